package dev.mergeforge.backend.cuda;

import dev.mergeforge.api.BackendChoice;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.Events;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.run.Merger;
import dev.mergeforge.run.Planner;
import dev.mergeforge.run.StatsLocator;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Chunked methods through the CUDA chunk ops (on the kernel emulator) under a device budget so
 * small that every large tensor is cut into several chunks and most input chunks cannot stay on the
 * device between passes: the merged files are the Java backend's bytes, the later passes copied
 * chunks up again, and with room to spare they copy nothing twice. A budget too small for one chunk
 * is the one-line error naming the smallest that works.
 */
class CudaChunkedMergeTest {
    /** The chunk ops' reserve plus 20 KiB: chunks of a few hundred elements; the largest tensor has 2048. */
    static final long SMALL = CudaChunkOps.RESERVE + (20 << 10);
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        // one layer: the emulator is slow, and every tensor kind is there once
        RandomModels.Builder b = RandomModels.builder().arch(Arch.QWEN2).hidden(32).intermediate(48).layers(1).heads(4).kvHeads(2)
                .vocab(64).maxPositions(64).dtype(DType.BF16).shards(1).seed(7);
        f = RandomModels.family(b, 2, 0.02, dir.resolve("models"));
    }

    static String config(String method) {
        Path base = f.base(), a = f.fineTunes().get(0), b = f.fineTunes().get(1);
        String two = "base_model: " + base + "\nmodels:\n  - model: " + a + "\n    parameters: {%s}\n  - model: " + b + "\n    parameters: {%s}\n";
        return switch (method) {
            case "ties" -> "merge_method: ties\n" + two.formatted("weight: 1.0, density: 0.4", "weight: 0.5, density: 0.6");
            case "dare_ties" -> "merge_method: dare_ties\n" + two.formatted("weight: 0.6, density: 0.3", "weight: 1.0, density: 0.5");
            case "breadcrumbs" -> "merge_method: breadcrumbs\n" + two.formatted("weight: 1.0, density: 0.8, gamma: 0.05", "weight: 0.7, density: 0.7, gamma: 0.1");
            case "della" -> "merge_method: della\n" + two.formatted("weight: 1.0, density: 0.5, epsilon: 0.1", "weight: 0.5, density: 0.4, epsilon: 0.2");
            case "slerp" -> "merge_method: slerp\nbase_model: " + base + "\nmodels:\n  - model: " + base + "\n  - model: " + a + "\nparameters: {t: [0.1, 0.9]}\n";
            case "arcee_fusion" -> "merge_method: arcee_fusion\nbase_model: " + base + "\nmodels:\n  - model: " + base + "\n  - model: " + a + "\n";
            case "sce" -> "merge_method: sce\nbase_model: " + base + "\nmodels:\n  - model: " + a + "\n  - model: " + b + "\nparameters: {select_topk: 0.4}\n";
            // every step taken: each chunk's iterate kept on the host between passes and copied up again
            case "karcher" -> "merge_method: karcher\nbase_model: " + base + "\nmodels:\n  - model: " + a + "\n  - model: " + b
                    + "\nparameters: {max_iter: 4, tol: 0.0}\ndtype: float32\n";
            default -> throw new IllegalArgumentException(method);
        };
    }

    static Path merge(String name, String yaml, dev.mergeforge.backend.Backend be) throws IOException {
        MergeConfig cfg = ConfigReader.read(MergeFixtures.yaml(dir, name + ".yml", yaml));
        Path out = dir.resolve(name + "-" + be.name());
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(cfg, in, StatsLocator.calibrating(null, n -> { }));
            Merger.run(plan, in, out, new Merger.Options(be, 3, 1L << 40, true, false, null, Events.NONE));
        }
        return out;
    }

    /** A CUDA backend on the emulator whose chunk ops may hold {@code budget} device bytes. */
    static CudaBackend cuda(long budget) {
        CudaBackend be = new CudaBackend(new EmulatedDevice());
        be.deviceMemory(budget);
        return be;
    }

    /**
     * Budgets a few KiB past the reserve, where arcee_fusion's 512 KiB histogram buffer, once freed,
     * went to the next tensor's few-KiB tiles and left the next histogram no room (the pool now
     * reuses a buffer under a budget only at its exact size: DeviceBufferPoolTest).
     */
    @ParameterizedTest(name = "reserve + {0} bytes")
    @ValueSource(longs = {16896, 23296})
    void arceeFusionFitsBudgetsJustPastTheReserve(long past) throws IOException {
        assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        Path java;
        try (JavaBackend be = new JavaBackend(2)) {
            java = merge("arcee-tight-java-" + past, config("arcee_fusion"), be);
        }
        try (CudaBackend be = cuda(CudaChunkOps.RESERVE + past)) {
            CudaMergeEquivalenceTest.assertSameFiles(java, merge("arcee-tight-" + past, config("arcee_fusion"), be));
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ties", "dare_ties", "slerp", "breadcrumbs", "della", "arcee_fusion", "sce", "karcher"})
    void aSmallDeviceBudgetGivesTheJavaBackendsBytes(String method) throws IOException {
        assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        String yaml = config(method);
        Path java;
        try (JavaBackend be = new JavaBackend(2)) {
            java = merge(method, yaml, be);
        }
        long reuploads;
        try (CudaBackend be = cuda(SMALL)) {
            CudaChunkOps ops = be.chunks();
            assertTrue(ops.fitChunk("t", 5, 32, 1 << 20) < 2048, "the budget cuts the largest tensors into several chunks");
            Path cuda = merge(method, yaml, be);
            CudaMergeEquivalenceTest.assertSameFiles(java, cuda);
            assertTrue(ops.keptLoads() + ops.uploadedLoads() > 0, "the merge ran on the chunk ops");
            assertEquals(0, ops.residentTiles(), "every chunk tile went back to the pool, so no device copy is left");
            reuploads = ops.reuploadedLoads();
        }
        if (method.equals("ties") || method.equals("breadcrumbs")) assertTrue(reuploads > 0, "passes after the first copied chunks up again: they do not all fit in the budget");
        if (method.equals("ties")) {
            try (CudaBackend be = cuda(64L << 20)) {
                Path roomy = merge(method + "-roomy", yaml, be);
                CudaMergeEquivalenceTest.assertSameFiles(java, roomy);
                assertEquals(0, be.chunks().reuploadedLoads(), "with room, every chunk stays on the device between passes");
                assertTrue(be.chunks().keptLoads() > 0, "later passes read the chunks kept on the device");
            }
        }
    }

    @Test
    void aDeviceBudgetTooSmallForOneChunkNamesTheSmallestThatWorks() throws IOException {
        assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        Path out = dir.resolve("too-small-cuda");
        try (CudaBackend be = cuda(CudaChunkOps.RESERVE)) {
            ConfigException e = assertThrows(ConfigException.class, () -> merge("too-small", config("ties"), be));
            String m = e.getMessage();
            assertFalse(m.contains("\n"), "one line: " + m);
            java.util.regex.Matcher g = java.util.regex.Pattern.compile("--device-memory 1\\.0MiB is too small for tensor (\\S+): a chunk of (\\d+)"
                    + " elements \\(its smallest cut\\) over (\\d+) device tiles needs \\S+; raise --device-memory to (\\d+)MiB or more").matcher(m);
            assertTrue(g.matches(), m);
            long align = Long.parseLong(g.group(2)), mib = Long.parseLong(g.group(4));
            int tiles = Integer.parseInt(g.group(3));
            assertTrue(tiles >= 4, "base, two models and the output at least: " + m);
            // the budget it names runs that tensor's chunk, one byte less than the working set does not
            long smallest = CudaChunkOps.workingBytes(tiles, align);
            assertEquals((smallest + (1 << 20) - 1) >> 20, mib, m);
            try (CudaBackend ok = cuda(smallest)) {
                assertEquals(align, ok.chunks().fitChunk(g.group(1), tiles, align, align));
            }
            try (CudaBackend no = cuda(smallest - 1)) {
                assertThrows(ConfigException.class, () -> no.chunks().fitChunk(g.group(1), tiles, align, align));
            }
        }
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void deviceMemoryIsForTheCudaBackendOnly() {
        ConfigException e = assertThrows(ConfigException.class, () -> new BackendChoice("java", "cpu", 0, 1L << 30));
        assertEquals("--device-memory sizes the cuda backend's GPU memory, but --backend is java; drop --device-memory or use --backend cuda", e.getMessage());
        assertThrows(ConfigException.class, () -> new BackendChoice("cuda", "cpu", 0, -1));
        MergeFixtures.Run r = MergeFixtures.cli("merge", "nope.yml", dir.resolve("cli-out").toString(), "--backend", "native", "--device-memory", "1GB");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--device-memory sizes the cuda backend's GPU memory, but --backend is native"), r.err());
    }
}
