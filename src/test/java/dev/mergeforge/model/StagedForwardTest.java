package dev.mergeforge.model;

import dev.mergeforge.arch.Architecture;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The stage-by-stage pass gives LlamaModel's logits bit for bit on every family's fixture (tied and
 * untied heads, learned positions, Gemma's embedding scale and soft-capping, MoE), each stage given
 * only its own tensors; stages out of order are refused.
 */
class StagedForwardTest {
    private static Parallel par;

    @BeforeAll static void start() { par = new Parallel(2); }

    @AfterAll static void stop() { par.shutdown(); }

    static String[] families() { return ArchFixtures.FAMILIES; }

    @ParameterizedTest
    @MethodSource("families")
    void stagesGiveTheWholeModelsLogitsBitForBit(String family) {
        Path dir = ArchFixtures.dir(family);
        try (SafetensorsFile ref = SafetensorsFile.open(dir.resolve("reference.safetensors"));
             LlamaModel model = LlamaModel.open(dir, par, true);
             SafetensorsWeights w = SafetensorsWeights.open(dir)) {
            int[][] seqs = ArchFixtures.inputIds(ref);
            float[][] expected = model.logits(seqs);
            StagedForward f = new StagedForward(w.config(), family, dir, par);
            assertEquals(model.bosTokenId(), f.bosTokenId());
            List<String> all = new ArrayList<>();
            f.start(seqs, only(w, f.embeddingNames(), all));
            Architecture a = f.config().arch();
            for (int i = 0; i < f.config().layers(); i++) {
                List<String> names = new ArrayList<>();
                for (String n : tensorNames(dir)) if (a.layerOf(n) == i) names.add(n);
                f.layer(i, only(w, names, all));
            }
            float[][] got = new float[seqs.length][];
            f.finish(only(w, f.headNames(w::contains), all), (b, l) -> got[b] = l);
            for (int b = 0; b < seqs.length; b++) assertArrayEquals(expected[b], got[b], family + " sequence " + b);
            assertTrue(all.containsAll(tensorNames(dir)), family + ": every stored tensor was fed to some stage");
        }
    }

    @Test
    void stagesOutOfOrderAreRefused() {
        Path dir = ArchFixtures.dir("llama3");
        try (SafetensorsWeights w = SafetensorsWeights.open(dir)) {
            StagedForward f = new StagedForward(w.config(), "llama3", dir, par);
            assertThrows(IllegalStateException.class, () -> f.layer(0, Map.of()), "a layer before the embeddings");
            f.start(new int[][] {{1, 2, 3}}, only(w, f.embeddingNames(), new ArrayList<>()));
            IllegalStateException skip = assertThrows(IllegalStateException.class, () -> f.layer(1, Map.of()));
            assertTrue(skip.getMessage().contains("layer 1"), skip.getMessage());
            assertThrows(IllegalStateException.class, () -> f.finish(Map.of(), (b, l) -> { }), "the head before the layers");
            IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> new StagedForward(w.config(), "x", dir, par)
                    .start(new int[][] {{1}}, Map.of()));
            assertTrue(missing.getMessage().contains(f.embeddingNames().getFirst()), missing.getMessage());
        }
    }

    /** The named tensors of {@code w} and nothing else, recording their names in {@code fed}. */
    private static Map<String, TensorView> only(SafetensorsWeights w, List<String> names, List<String> fed) {
        Map<String, TensorView> m = new HashMap<>();
        for (String n : names) m.put(n, w.tensor(n));
        fed.addAll(names);
        return m;
    }

    private static List<String> tensorNames(Path dir) {
        List<String> out = new ArrayList<>();
        try (java.util.stream.Stream<Path> s = java.nio.file.Files.list(dir)) {
            for (Path p : s.filter(p -> p.getFileName().toString().startsWith("model") && p.toString().endsWith(".safetensors")).toList()) {
                try (SafetensorsFile file = SafetensorsFile.open(p)) {
                    out.addAll(file.names());
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out;
    }
}
