package dev.mergeforge.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The merge into memory ({@link Merger#runInMemory}) holds, tensor for tensor, the bytes the merge
 * to a folder writes into its shards, on each path a tensor can take: the whole-tensor tiles, the
 * passes over chunks and the fused pass (native backend); its config is the folder's config.json.
 */
class MemoryModelTest {
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 2, dir.resolve("models"));
    }

    @Test
    void memoryHoldsTheBytesTheShardsGetOnEveryPath() throws Exception {
        String models = "base_model: %1$s\nmodels:\n  - model: %2$s\n    parameters: {weight: 0.6, density: 0.3}\n"
                + "  - model: %3$s\n    parameters: {weight: 0.9, density: 0.5}\n";
        String ties = ("merge_method: ties\n" + models + "dtype: bfloat16\n").formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
        String linear = ("merge_method: task_arithmetic\n" + models.replace(", density: 0.3", "").replace(", density: 0.5", "")
                + "dtype: float32\n").formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
        try (JavaBackend java = new JavaBackend(2)) {
            List<Backend> backends = new ArrayList<>(List.of(java, ChunkedMergeTest.tilesOnly(java)));
            NativeBackend nat = NativeBackend.isAvailable() ? new NativeBackend(2) : null;
            if (nat != null) backends.add(nat);
            try {
                for (Backend be : backends) {
                    // small chunks (several per tensor) and small shards (several files)
                    compare("ties", ties, be, 64);
                    compare("linear", linear, be, 64);
                }
            } finally {
                if (nat != null) nat.close();
            }
        }
    }

    private static void compare(String name, String yaml, Backend be, long chunk) throws Exception {
        Path cfg = Files.writeString(dir.resolve(name + ".yml"), yaml);
        Path out = dir.resolve(name + "-" + System.nanoTime());
        List<String> log = new ArrayList<>();
        Merger.Options o = new Merger.Options(be, 5, 4096, false, false, null, events(log), InputChunks.CHUNK, chunk);
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            Merger.run(plan, in, out, o);
            try (Merger.InMemory m = Merger.runInMemory(plan, in, o)) {
                assertEquals(plan.tensors().size(), m.result().tensors());
                assertEquals(new ObjectMapper().readTree(out.resolve("config.json").toFile()), m.model().config(), name);
                assertEquals(f.base().toAbsolutePath().normalize(), m.model().tokenizerDir().toAbsolutePath().normalize());
                List<Path> shards;
                try (Stream<Path> s = Files.list(out)) {
                    shards = s.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList();
                }
                assertTrue(shards.size() > 1, "several shards: " + shards);
                int seen = 0;
                for (Path p : shards) {
                    try (SafetensorsFile file = SafetensorsFile.open(p)) {
                        for (String t : file.names()) {
                            TensorView disk = file.tensor(t), mem = m.model().tensors().get(t);
                            assertEquals(disk.dtype(), mem.dtype(), t);
                            assertEquals(disk.shape(), mem.shape(), t);
                            assertEquals(-1, disk.data().mismatch(mem.data()), () -> name + " on " + be.name() + ": " + t + " differs");
                            seen++;
                        }
                    }
                }
                assertEquals(m.model().tensors().size(), seen);
                assertEquals(plan.outBytes(), m.model().bytes());
            }
        }
    }

    @Test
    void outOfOrderOrMissingTensorsAreRefusedAndClosingFreesTheMemory() throws Exception {
        Path cfg = MergeFixtures.linear(dir, "order.yml", f.base(), f.fineTunes().get(0));
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            List<PlannedTensor> ts = plan.tensors();
            MemoryModel m = new MemoryModel(ts, OutputFiles.outputConfig(plan, DType.F32), f.base());
            PlannedTensor second = ts.get(1);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> m.write(second.name(), MemorySegment.ofArray(new byte[(int) second.outBytes()])));
            assertTrue(e.getMessage().contains(second.name()) && e.getMessage().contains(ts.getFirst().name()), e.getMessage());
            PlannedTensor first = ts.getFirst();
            assertThrows(IllegalArgumentException.class, () -> m.write(first.name(), MemorySegment.ofArray(new byte[(int) first.outBytes() + 1])));
            byte[] bytes = new byte[(int) first.outBytes()];
            for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (i * 7);
            m.write(first.name(), MemorySegment.ofArray(bytes));
            assertEquals(-1, MemorySegment.ofArray(bytes).mismatch(m.tensors().get(first.name()).data()));
            IllegalStateException missing = assertThrows(IllegalStateException.class, m::finish);
            assertTrue(missing.getMessage().contains((ts.size() - 1) + " planned tensors"), missing.getMessage());
            MemorySegment held = m.tensors().get(first.name()).data();
            m.close();
            assertThrows(IllegalStateException.class, () -> held.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0), "the arena is closed");
        }
    }

    private static Events events(List<String> log) {
        return new Events() {
            @Override public void start(String m, int t, long bi, long bo, String b) {}
            @Override public void tensor(int i, int t, String n, long bi, long bo, double e) {}
            @Override public void note(String message) { log.add(message); }
            @Override public void done(String o, int t, long bi, long bo, double s, long p, long r) {}
            @Override public void error(String m, int c) {}
        };
    }
}
