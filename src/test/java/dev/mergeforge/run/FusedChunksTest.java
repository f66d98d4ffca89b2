package dev.mergeforge.run;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The fused path reads its inputs in chunks (chunk 0 staged by the read-ahead, the rest one chunk
 * ahead on a reader thread) and writes the output in pieces cut at chunk and block edges: with
 * chunks far smaller than the tensors (sizes that divide nothing), writer blocks cutting chunks,
 * sharded inputs, a base that is also listed among the models, and 16- and 32-bit outputs, the
 * files equal the Java backend's tile path byte for byte.
 */
class FusedChunksTest {
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        assumeTrue(NativeBackend.isAvailable(), () -> "native backend not built: " + NativeBackend.unavailableReason());
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 2, dir.resolve("models"));
    }

    static Path merge(String name, String yaml, Backend be, long chunk) throws Exception { return merge(name, yaml, be, chunk, null); }

    /** With {@code act}: AIM at omega 0.3 from that statistics file. */
    static Path merge(String name, String yaml, Backend be, long chunk, Path act) throws Exception {
        Path cfg = Files.writeString(dir.resolve(name + ".yml"), yaml);
        Path out = dir.resolve(name + "-" + be.name() + "-" + chunk);
        try (Planner.Inputs in = new Planner.Inputs();
             AimRelaxer aim = act == null ? null : new AimRelaxer(act, AimRelaxer.Settings.of(0.3), dev.mergeforge.arch.Architectures.LLAMA, false)) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            Merger.run(plan, in, out, new Merger.Options(be, 0, 1L << 40, true, false, aim, Events.NONE, chunk));
        }
        return out;
    }

    /** A random act_mean statistic for every weight but the embeddings: one positive value per input channel, some exactly 0. */
    static Path actMean() throws Exception {
        java.util.Map<String, float[]> t = new java.util.LinkedHashMap<>();
        java.util.Map<String, dev.mergeforge.tensor.Shape> shapes = new java.util.LinkedHashMap<>();
        java.util.Random r = new java.util.Random(4);
        try (dev.mergeforge.io.Checkpoint c = dev.mergeforge.io.Checkpoint.open(f.base())) {
            for (String n : c.names()) {
                if (n.contains("embed")) continue;
                dev.mergeforge.tensor.Shape s = c.tensor(n).shape();
                long ch = s.rank() == 2 ? s.dim(1) : s.dim(0);
                float[] v = new float[Math.toIntExact(ch)];
                for (int i = 0; i < v.length; i++) v[i] = i % 7 == 3 ? 0f : (float) Math.abs(r.nextGaussian());
                t.put(n, v);
                shapes.put(n, dev.mergeforge.tensor.Shape.of(ch));
            }
        }
        Path p = dir.resolve("act.safetensors");
        dev.mergeforge.calib.TinyLlama.writeTensors(p, t, shapes, java.util.Map.of("stat", "act_mean"));
        return p;
    }

    /** AIM's relaxation as the last step of the fused pass, chunked: the tile path's bytes (Java relaxes after the method). */
    @Test
    void chunkedFusedMergesWithAimWriteTheTilePathsBytes() throws Exception {
        Path act = actMean();
        Path ft1 = f.fineTunes().get(0), ft2 = f.fineTunes().get(1);
        String linear = ("merge_method: linear\nbase_model: %1$s\nmodels:\n  - model: %1$s\n    parameters: {weight: 0.2}\n"
                + "  - model: %2$s\n    parameters: {weight: 0.3}\n  - model: %3$s\n    parameters: {weight: 0.7}\ndtype: bfloat16\n")
                .formatted(f.base(), ft1, ft2);
        String ta = "merge_method: task_arithmetic\nbase_model: %s\nmodels:\n  - model: %s\n    parameters: {weight: 0.6}\n  - model: %s\n    parameters: {weight: 1.1}\ndtype: float16\n"
                .formatted(f.base(), ft1, ft2);
        try (JavaBackend java = new JavaBackend(2); NativeBackend nat = new NativeBackend(2)) {
            for (String[] c : new String[][] {{"aim-linear", linear}, {"aim-ta", ta}}) {
                Path ref = merge(c[0], c[1], java, InputChunks.CHUNK, act);
                for (long chunk : new long[] {777, 50, InputChunks.CHUNK}) sameFiles(ref, merge(c[0], c[1], nat, chunk, act));
                // and the relaxation changed something: the plain merge differs
                Path plain = merge(c[0] + "-plain", c[1], java, InputChunks.CHUNK);
                assertEquals(false, Files.mismatch(ref.resolve("model.safetensors"), plain.resolve("model.safetensors")) == -1, c[0] + ": AIM had no effect");
            }
        }
    }

    static void sameFiles(Path a, Path b) throws Exception {
        List<Path> files;
        try (Stream<Path> s = Files.list(a)) {
            files = s.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList();
        }
        assertEquals(false, files.isEmpty(), "no weights in " + a);
        for (Path p : files) assertEquals(-1, Files.mismatch(p, b.resolve(p.getFileName())), p.getFileName() + ": " + a + " vs " + b);
    }

    @Test
    void chunkedFusedMergesWriteTheTilePathsBytes() throws Exception {
        Path ft1 = f.fineTunes().get(0), ft2 = f.fineTunes().get(1);
        String linear = "merge_method: linear\nmodels:\n  - model: %s\n    parameters: {weight: 0.3}\n  - model: %s\n    parameters: {weight: 0.7}\ndtype: float16\n"
                .formatted(ft1, ft2);
        String ta = ("merge_method: task_arithmetic\nbase_model: %1$s\nmodels:\n  - model: %1$s\n  - model: %2$s\n    parameters: {weight: 0.6}\n"
                + "  - model: %3$s\n    parameters: {weight: 1.1}\nparameters: {lambda: 0.8, normalize: true}\ndtype: float32\n").formatted(f.base(), ft1, ft2);
        try (JavaBackend java = new JavaBackend(2); NativeBackend nat = new NativeBackend(2)) {
            for (String[] c : new String[][] {{"linear", linear}, {"ta", ta}}) {
                Path ref = merge(c[0], c[1], java, InputChunks.CHUNK);
                for (long chunk : new long[] {777, 1000, 64, InputChunks.CHUNK}) sameFiles(ref, merge(c[0], c[1], nat, chunk));
                // 4 KiB writer blocks: block edges fall inside chunks, so pieces start mid-chunk
                System.setProperty("mergeforge.writer.block", "4096");
                try {
                    sameFiles(ref, merge(c[0] + "-smallblocks", c[1], nat, 777));
                } finally {
                    System.clearProperty("mergeforge.writer.block");
                }
            }
        }
    }
}
