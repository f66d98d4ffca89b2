package dev.mergeforge.run;

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

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole merges through the Merger: tensors of the chunked methods run as passes over chunks (chunks
 * far smaller than the tensors, writer blocks cutting chunks) and give the files of the whole-tensor
 * tile path byte for byte, on the Java and the native backend. The tile path is forced with a Java
 * backend that offers no chunk ops.
 */
class ChunkedMergeTest {
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 2, dir.resolve("models"));
    }

    /** The Java backend without chunk ops: every method takes the whole-tensor tile path. */
    static Backend tilesOnly(JavaBackend java) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (p, m, args) -> {
            if (m.getName().equals("chunkOps")) return Optional.empty();
            if (m.getName().equals("close")) return null;
            try {
                return m.invoke(java, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    static Path merge(String name, String yaml, Backend be, long chunk, List<String> log) throws Exception {
        return run(name, yaml, be, chunk, log).output();
    }

    static Merger.Result run(String name, String yaml, Backend be, long chunk, List<String> log) throws Exception {
        Path cfg = Files.writeString(dir.resolve(name + ".yml"), yaml);
        Path out = dir.resolve(name + "-" + be.name() + "-" + chunk + "-" + System.nanoTime());
        Events ev = new Events() {
            @Override public void start(String m, int t, long bi, long bo, String b) {}
            @Override public void tensor(int i, int t, String n, long bi, long bo, double e) {}
            @Override public void note(String message) { log.add(message); }
            @Override public void done(String o, int t, long bi, long bo, double s, long p, long r) {}
            @Override public void error(String m, int c) {}
        };
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            return Merger.run(plan, in, out, new Merger.Options(be, 5, 1L << 40, true, false, null, ev, InputChunks.CHUNK, chunk));
        }
    }

    @Test
    void chunkedMethodsWriteTheTilePathsBytes() throws Exception {
        Path ft1 = f.fineTunes().get(0), ft2 = f.fineTunes().get(1);
        String models = "base_model: %1$s\nmodels:\n  - model: %2$s\n    parameters: {weight: 0.6, density: 0.3, gamma: 0.05}\n"
                + "  - model: %3$s\n    parameters: {weight: 0.9, density: 0.5, gamma: 0.1}\n";
        String noGamma = models.replace(", gamma: 0.05", "").replace(", gamma: 0.1", "");
        String plain = "base_model: %1$s\nmodels:\n  - model: %2$s\n  - model: %3$s\n";
        String[][] configs = {
                {"ties", "merge_method: ties\n" + noGamma + "dtype: bfloat16\n"},
                {"dare_ties", "merge_method: dare_ties\n" + noGamma + "dtype: float32\n"},
                {"breadcrumbs_ties", "merge_method: breadcrumbs_ties\n" + models + "parameters: {rescale: true}\ndtype: float16\n"},
                {"arcee_fusion", "merge_method: arcee_fusion\nbase_model: %1$s\nmodels:\n  - model: %2$s\ndtype: bfloat16\n"},
                {"ram", "merge_method: ram\n" + plain + "dtype: float32\n"},
                {"ramplus_tl", "merge_method: ramplus_tl\n" + plain + "parameters: {r: 0.5, alpha: 50.0}\ndtype: bfloat16\n"},
                {"karcher", "merge_method: karcher\n" + plain + "parameters: {max_iter: 6}\ndtype: float32\n"},
                {"multislerp", "merge_method: multislerp\n" + noGamma.replace(", density: 0.3", "").replace(", density: 0.5", "") + "dtype: float32\n"},
                {"nuslerp_columns", "merge_method: nuslerp\n" + noGamma.replace(", density: 0.3", "").replace(", density: 0.5", "")
                        + "parameters: {nuslerp_flatten: false, nuslerp_row_wise: true}\ndtype: bfloat16\n"},
        };
        try (JavaBackend java = new JavaBackend(2)) {
            List<Backend> streams = new ArrayList<>(List.of(java));
            NativeBackend nat = NativeBackend.isAvailable() ? new NativeBackend(2) : null;
            if (nat != null) streams.add(nat);
            try {
                for (String[] c : configs) {
                    String yaml = c[1].formatted(f.base(), ft1, ft2);
                    List<String> refLog = new ArrayList<>();
                    Path ref = merge(c[0], yaml, tilesOnly(java), Merger.STREAM_CHUNK, refLog);
                    for (Backend be : streams) {
                        for (long chunk : new long[] {97, 1000}) FusedChunksTest.sameFiles(ref, merge(c[0], yaml, be, chunk, new ArrayList<>()));
                    }
                    // 4 KiB writer blocks: block edges fall inside chunks
                    System.setProperty("mergeforge.writer.block", "4096");
                    try {
                        FusedChunksTest.sameFiles(ref, merge(c[0] + "-smallblocks", yaml, streams.getLast(), 777, new ArrayList<>()));
                    } finally {
                        System.clearProperty("mergeforge.writer.block");
                    }
                }
            } finally {
                if (nat != null) nat.close();
            }
        }
    }

    /** arcee_fusion (chunks of whole rows), ram and ramplus_tl (any cut) hold chunks, not whole-tensor tiles. */
    @Test
    void fusionAndRamHoldChunksNotTiles() throws Exception {
        String[] yamls = {
                "merge_method: arcee_fusion\nbase_model: %1$s\nmodels:\n  - model: %2$s\n",
                "merge_method: ram\nbase_model: %1$s\nmodels:\n  - model: %2$s\n  - model: %3$s\n",
                "merge_method: ramplus_tl\nbase_model: %1$s\nmodels:\n  - model: %2$s\n  - model: %3$s\n"};
        try (JavaBackend java = new JavaBackend(2)) {
            for (String y : yamls) {
                String yaml = y.formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
                Merger.Result chunked = run("fr", yaml, java, 97, new ArrayList<>()), tiles = run("fr", yaml, tilesOnly(java), Merger.STREAM_CHUNK, new ArrayList<>());
                assertTrue(chunked.peakWorkingBytes() * 4 < tiles.peakWorkingBytes(), yaml.lines().findFirst().orElseThrow() + ": working memory "
                        + chunked.peakWorkingBytes() + " vs the tile path's " + tiles.peakWorkingBytes());
            }
        }
    }

    /** karcher, multislerp and row-wise nuslerp hold chunks, not whole-tensor tiles, whatever their passes. */
    @Test
    void iterativeMethodsHoldChunksNotTiles() throws Exception {
        String two = "base_model: %1$s\nmodels:\n  - model: %2$s\n    parameters: {weight: 0.6}\n  - model: %3$s\n    parameters: {weight: 0.9}\n";
        String[] yamls = {
                "merge_method: karcher\nbase_model: %1$s\nmodels:\n  - model: %2$s\n  - model: %3$s\n",
                "merge_method: multislerp\n" + two,
                "merge_method: nuslerp\n" + two + "parameters: {nuslerp_flatten: false, nuslerp_row_wise: true}\n"};
        try (JavaBackend java = new JavaBackend(2)) {
            for (String y : yamls) {
                String yaml = y.formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
                Merger.Result chunked = run("it", yaml, java, 97, new ArrayList<>()), tiles = run("it", yaml, tilesOnly(java), Merger.STREAM_CHUNK, new ArrayList<>());
                assertTrue(chunked.peakWorkingBytes() * 4 < tiles.peakWorkingBytes(), yaml.lines().findFirst().orElseThrow() + ": working memory "
                        + chunked.peakWorkingBytes() + " vs the tile path's " + tiles.peakWorkingBytes());
            }
        }
    }

    /**
     * The predicted peak (--dry-run, the log) covers each chunked tensor's working set as the runner
     * holds it: a float32 chunk per input, per scratch tile of its program (karcher: four) and the output.
     */
    @Test
    void predictedPeakCoversTheProgramsScratchChunks() throws Exception {
        String yaml = "merge_method: karcher\nbase_model: %1$s\nmodels:\n  - model: %2$s\n  - model: %3$s\n"
                .formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
        Path cfg = Files.writeString(dir.resolve("peak.yml"), yaml);
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            for (long budget : new long[] {1L << 30, MemoryBudget.BASELINE + MemoryBudget.WRITER + (4L << 20)}) {
                MemoryBudget.Estimate e = MemoryBudget.estimate(plan, budget, false, true, false, false);
                int checked = 0;
                for (PlannedTensor t : plan.tensors()) {
                    if (t.copyOnly()) continue;
                    var program = ((dev.mergeforge.merge.chunk.ChunkedMethod) plan.config().method().factory().create(t.global()))
                            .program(new dev.mergeforge.merge.chunk.TensorSetup(t.name(), t.shape(), t.params(), t.baseIndex(), t.base() != null, 0, n -> { }));
                    long chunk = Math.min(t.shape().numel(), dev.mergeforge.merge.chunk.ChunkRunner.chunkFor(program.align(), e.chunkElements()));
                    long held = dev.mergeforge.merge.chunk.ChunkRunner.workingBytes(t.inputs().size() + 1, program.scratch(), chunk);
                    assertEquals(4, program.scratch(), t.name());
                    assertTrue(e.peakBytes() >= MemoryBudget.BASELINE + MemoryBudget.WRITER + held, t.name() + ": predicted " + e.peakBytes() + " < " + held + " held");
                    checked++;
                }
                assertTrue(checked > 0);
            }
        }
    }

    /**
     * The chunk the estimate plans with is the one the backend's ops run: on host backends the budget's
     * chunk capped at {@link dev.mergeforge.backend.HostChunkOps#HOST_CHUNK} (as their fitChunk cuts it), on
     * CUDA the budget's own — and the predicted peak follows (a larger chunk, a larger peak).
     */
    @Test
    void estimateUsesTheChunkTheHostOpsRun() throws Exception {
        String yaml = "merge_method: ties\nbase_model: %1$s\nmodels:\n  - model: %2$s\n    parameters: {weight: 1.0, density: 0.5}\n  - model: %3$s\n    parameters: {weight: 1.0, density: 0.5}\n"
                .formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
        Path cfg = Files.writeString(dir.resolve("cap.yml"), yaml);
        try (Planner.Inputs in = new Planner.Inputs(); JavaBackend java = new JavaBackend(1)) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            long budget = 4L << 30;
            MemoryBudget.Estimate host = MemoryBudget.estimate(plan, budget, true, true, true, false, false);
            MemoryBudget.Estimate device = MemoryBudget.estimate(plan, budget, true, true, true, false, true);
            assertTrue(device.chunkElements() > dev.mergeforge.backend.HostChunkOps.HOST_CHUNK, "a 4 GiB budget allows more: " + device.chunkElements());
            assertEquals(dev.mergeforge.backend.HostChunkOps.HOST_CHUNK, host.chunkElements());
            long ops = java.chunkOps().orElseThrow().fitChunk("t", 9, 1, device.chunkElements());
            assertEquals(ops, host.chunkElements(), "the host ops cut the budget's chunk to the estimate's");
            long largest = plan.tensors().stream().filter(t -> !t.copyOnly()).mapToLong(t -> t.shape().numel()).max().orElseThrow();
            if (largest > dev.mergeforge.backend.HostChunkOps.HOST_CHUNK) assertTrue(host.peakBytes() < device.peakBytes());
            else assertEquals(device.peakBytes(), host.peakBytes(), "tensors of one chunk either way");
        }
    }

    /** DARE through the Merger in chunks: the tile path's bytes, and another seed draws another mask (the drops really ran). */
    @Test
    void anotherSeedChangesTheChunkedDareMerge() throws Exception {
        Path ft1 = f.fineTunes().get(0), ft2 = f.fineTunes().get(1);
        String yaml = ("merge_method: dare_linear\nbase_model: %1$s\nmodels:\n  - model: %2$s\n    parameters: {weight: 0.6, density: 0.3}\n"
                + "  - model: %3$s\n    parameters: {weight: 0.9, density: 0.5}\ndtype: float32\n").formatted(f.base(), ft1, ft2);
        try (JavaBackend java = new JavaBackend(2)) {
            Merger.Result chunked = run("dl", yaml, java, 97, new ArrayList<>()), tiles = run("dl", yaml, tilesOnly(java), Merger.STREAM_CHUNK, new ArrayList<>());
            Path a = chunked.output();
            FusedChunksTest.sameFiles(tiles.output(), a);
            // the chunked run held chunks, not whole-tensor tiles
            assertTrue(chunked.peakWorkingBytes() * 4 < tiles.peakWorkingBytes(), "working memory " + chunked.peakWorkingBytes() + " vs the tile path's " + tiles.peakWorkingBytes());
            Path cfg = Files.writeString(dir.resolve("dl2.yml"), yaml);
            Path b = dir.resolve("dl-seed6");
            try (Planner.Inputs in = new Planner.Inputs()) {
                Merger.run(Planner.plan(ConfigReader.read(cfg), in), in, b, new Merger.Options(java, 6, 1L << 40, true, false, null, Events.NONE, InputChunks.CHUNK, 97));
            }
            assertTrue(Files.mismatch(a.resolve("model.safetensors"), b.resolve("model.safetensors")) != -1, "the seed must change the drops");
        }
    }
}
