package dev.mergeforge.run;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The layer-by-layer merge hands each stage exactly its tensors, with the bytes the merge to a folder
 * writes, and frees a stage before the next one's tensors exist: a view of the previous stage can no
 * longer be read, and the most bytes held is the largest stage's.
 */
class LayerFeedTest {
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, dir.resolve("models"));
    }

    @Test
    void eachStageGetsTheDiskBytesAndTheStageBeforeIsFreed() throws Exception {
        String ties = """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 0.6, density: 0.3}
                  - model: %s
                    parameters: {weight: 0.9, density: 0.5}
                dtype: bfloat16
                """.formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
        Path cfg = Files.writeString(dir.resolve("ties.yml"), ties);
        try (JavaBackend java = new JavaBackend(2)) {
            List<Backend> backends = new ArrayList<>(List.of(java));
            NativeBackend nat = NativeBackend.isAvailable() ? new NativeBackend(2) : null;
            if (nat != null) backends.add(nat);
            try {
                for (Backend be : backends) check(cfg, be);
            } finally {
                if (nat != null) nat.close();
            }
        }
    }

    private static void check(Path cfg, Backend be) throws Exception {
        Path out = dir.resolve("disk-" + be.name());
        Merger.Options o = new Merger.Options(be, 5, 1L << 40, false, false, null, Events.NONE, InputChunks.CHUNK, 64);
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            Merger.run(plan, in, out, o);
            Map<String, PlannedTensor> byName = new HashMap<>();
            for (PlannedTensor t : plan.tensors()) byName.put(t.name(), t);
            // embeddings; each layer; norm and head, with the embeddings again (a tied head's case: merged twice)
            List<List<String>> stages = new ArrayList<>();
            stages.add(List.of("model.embed_tokens.weight"));
            stages.addAll(LayerFeed.layerStages(plan));
            stages.add(List.of("model.norm.weight", "lm_head.weight", "model.embed_tokens.weight"));
            assertEquals(plan.outLayers() + 2, stages.size());
            long largest = 0;
            for (List<String> s : stages) largest = Math.max(largest, s.stream().mapToLong(n -> byName.get(n).outBytes()).sum());

            List<TensorView> previous = new ArrayList<>();
            List<Integer> ran = new ArrayList<>();
            int[] fed = {0};
            try (SafetensorsFile disk = SafetensorsFile.open(out.resolve("model.safetensors"))) {
                LayerFeed.Result r = LayerFeed.run(plan, in, o, stages, (s, w) -> {
                    ran.add(s);
                    for (TensorView v : previous) {
                        assertThrows(IllegalStateException.class, () -> v.data().get(ValueLayout.JAVA_BYTE, 0),
                                "stage " + (s - 1) + "'s " + v.name() + " is freed before stage " + s + " runs");
                    }
                    previous.clear();
                    assertEquals(stages.get(s).stream().sorted().toList(), w.keySet().stream().sorted().toList(), "stage " + s + "'s tensors only");
                    for (TensorView v : w.values()) {
                        assertEquals(-1, disk.tensor(v.name()).data().mismatch(v.data()), () -> be.name() + ": " + v.name() + " differs from the disk merge");
                        previous.add(v);
                        fed[0]++;
                    }
                });
                assertEquals(java.util.stream.IntStream.range(0, stages.size()).boxed().toList(), ran, "every stage, in order");
                assertEquals(plan.tensors().size() + 1, fed[0], "every tensor once, the embeddings twice");
                assertEquals(largest, r.peakHeldBytes(), "at most one stage held");
                assertTrue(r.peakHeldBytes() < plan.outBytes() / 2, "well under the model: " + r.peakHeldBytes() + " of " + plan.outBytes());
                assertEquals(plan.tensors().size() + 1, r.merge().tensors());
            }
            for (TensorView v : previous) assertThrows(IllegalStateException.class, () -> v.data().get(ValueLayout.JAVA_BYTE, 0), "the last stage is freed");
        }
    }

    @Test
    void aNameThePlanLacksIsRefusedBeforeAnythingIsMerged() throws Exception {
        Path cfg = MergeFixtures.linear(dir, "missing.yml", f.base(), f.fineTunes().get(0));
        try (Planner.Inputs in = new Planner.Inputs(); JavaBackend java = new JavaBackend(1)) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            List<String> events = new ArrayList<>();
            Merger.Options o = new Merger.Options(java, 0, 1L << 40, false, false, null, new Events() {
                @Override public void start(String m, int t, long bi, long bo, String b) { events.add("start"); }
                @Override public void tensor(int i, int t, String n, long bi, long bo, double s) { events.add(n); }
                @Override public void note(String m) { }
                @Override public void done(String out, int t, long bi, long bo, double s, long p, long r) { events.add("done"); }
                @Override public void error(String m, int c) { }
            });
            CheckpointException e = assertThrows(CheckpointException.class, () -> LayerFeed.run(plan, in, o,
                    List.of(List.of("model.embed_tokens.weight"), List.of("transformer.wte.weight")), (s, w) -> { }));
            assertTrue(e.getMessage().contains("'transformer.wte.weight'") && !e.getMessage().contains("\n"), e.getMessage());
            assertEquals(List.of(), events, "nothing merged");
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().contains("tmp")), "nothing written");
        }
    }
}
