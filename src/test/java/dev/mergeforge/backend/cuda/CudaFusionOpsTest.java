package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.FusionCases;
import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Arcee Fusion's CUDA chunk ops against the Java reference bit for bit, on device-resident tiles
 * of the emulated device: the row-KL, importance, histogram and combine kernels (kernels/chunk.cu)
 * on every case of FusionCases, rows of 17 blocks and NaN/±∞ rows included.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaFusionOpsTest {
    final Parallel par = new Parallel(2);
    final JavaChunkOps ref = new JavaChunkOps(par);
    CudaBackend backend;
    ChunkOps cuda;
    Arena arena;

    /** Why the device these tests run on is missing, if it is (the emulator here; a GPU in {@link CudaFusionOpsGpuTest}). */
    Optional<String> unavailable() { return EmulatedDevice.unavailableReason(); }

    CudaBackend open() { return new CudaBackend(new EmulatedDevice()); }

    @BeforeAll
    void openBackend() {
        if (unavailable().isPresent()) return;
        backend = open();
        cuda = backend.chunkOps().orElseThrow();
        arena = Arena.ofShared();
    }

    @AfterAll
    void close() {
        if (backend != null) backend.close();
        if (arena != null) arena.close();
        par.shutdown();
    }

    @BeforeEach
    void needDevice() { assumeTrue(unavailable().isEmpty(), () -> unavailable().orElse("")); }

    /** A native tile holding v, moved onto the device by an op (as a chunk's loaded tiles are). */
    Tile onDevice(float[] v) {
        Tile t = new Tile(arena.allocate(Math.max(4, 4L * v.length), 64), Shape.of(v.length));
        MemorySegment.copy(MemorySegment.ofArray(v), 0, t.data(), 0, 4L * v.length);
        // a device op leaves the tile DEVICE_ONLY: x·1 into itself
        cuda.scale(t, 1f, t);
        return t;
    }

    float[] read(Tile t) {
        float[][] out = new float[1][];
        cuda.onHost(List.of(t), List.of(), () -> out[0] = t.toArray());
        return out[0];
    }

    @Test
    void everyOpIsJavasBits() {
        for (FusionCases.Case c : FusionCases.cases(true)) {
            Tile b = onDevice(c.base()), o = onDevice(c.other());
            double[] want = new double[c.rows()], got = new double[c.rows()];
            ref.rowKl(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), want);
            cuda.rowKl(b, o, c.cols(), got);
            assertEquals(Arrays.toString(want), Arrays.toString(got), c.name() + " rowKl");
            float[] kl = FusionCases.kls(c.rows(), c.cols());
            float[] impWant = new float[c.base().length];
            ref.fusionImportance(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl, Tile.ofArray(impWant));
            Tile imp = onDevice(new float[c.base().length]);
            cuda.fusionImportance(b, o, c.cols(), kl, imp);
            // a device op reading the importances sees what the host wrote
            Tile twice = onDevice(new float[c.base().length]);
            cuda.scale(imp, 2f, twice);
            float[] twiceWant = impWant.clone();
            for (int i = 0; i < twiceWant.length; i++) twiceWant[i] = 2f * twiceWant[i];
            assertEquals(Arrays.toString(twiceWant), Arrays.toString(read(twice)), c.name() + " importance");
            long[] hw = new long[FusionLoops.BINS], hg = new long[FusionLoops.BINS];
            ref.orderHistogram(Tile.ofArray(impWant), -1, hw);
            cuda.orderHistogram(imp, -1, hg);
            assertEquals(Arrays.toString(hw), Arrays.toString(hg), c.name() + " histogram");
            // the second level: the low 16 bits of the keys in the fullest high bin
            int fullest = 0;
            for (int v = 1; v < hw.length; v++) if (hw[v] > hw[fullest]) fullest = v;
            long[] lw = new long[FusionLoops.BINS], lg = new long[FusionLoops.BINS];
            ref.orderHistogram(Tile.ofArray(impWant), fullest, lw);
            cuda.orderHistogram(imp, fullest, lg);
            assertEquals(Arrays.toString(lw), Arrays.toString(lg), c.name() + " histogram of bin " + fullest);
            float[] outWant = new float[c.base().length];
            ref.fusionCombine(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl, 1e-6f, Tile.ofArray(outWant));
            Tile out = onDevice(new float[c.base().length]);
            cuda.fusionCombine(b, o, c.cols(), kl, 1e-6f, out);
            assertEquals(Arrays.toString(outWant), Arrays.toString(read(out)), c.name() + " combine");
            // a threshold that is one of the importances, as the method's is: the element at it is kept (≥)
            float at = impWant[impWant.length / 2];
            ref.fusionCombine(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl, at, Tile.ofArray(outWant));
            cuda.fusionCombine(b, o, c.cols(), kl, at, out);
            assertEquals(Arrays.toString(outWant), Arrays.toString(read(out)), c.name() + " combine at importance " + at);
            for (Tile t : List.of(b, o, imp, twice, out)) backend.released(t);
        }
    }
}
