package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.CanonicalSum;
import dev.mergeforge.backend.Reductions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * kernels/reduce.cu's partial sums on the emulator against each canonical block in the order of
 * docs/methods.md (64 stripes, the pairwise tree; written out independently in CanonicalSum), bit
 * for bit, over more canonical blocks than a grid of one or two CUDA blocks (two warps each) takes
 * at once, so the grid-stride over warps, the warp-shuffle tree and the short last block are all
 * crossed.
 */
class ReduceKernelsTest {
    private EmulatedDevice dev;
    private DeviceBufferPool pool;

    @BeforeEach
    void open() {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        dev = new EmulatedDevice();
        pool = new DeviceBufferPool(dev);
    }

    @AfterEach
    void close() {
        if (dev == null) return;
        pool.close();
        dev.close();
    }

    @Test
    void partialsAreEachBlockSummedInOrderWhateverTheGrid() {
        int n = 65 * Reductions.BLOCK + 17;   // 66 canonical blocks: groups of 64 and 2, the last block 17 long
        int nb = (int) Reductions.blocks(n);
        float[] a = BackendConformanceSuite.data(n, 3), c = BackendConformanceSuite.data(n, 4);
        DeviceBuffer da = pool.borrow(4L * n, "a"), dc = pool.borrow(4L * n, "c"), dp = pool.borrow(8L * nb, "partial");
        try {
            dev.upload(MemorySegment.ofArray(a), da);
            dev.upload(MemorySegment.ofArray(c), dc);
            for (int kind = 0; kind < 3; kind++) {
                double[] want = new double[nb];
                for (int b = 0; b < nb; b++) {
                    // block b alone, in the canonical order written out independently (CanonicalSum)
                    int lo = b * Reductions.BLOCK, len = Math.min(n, lo + Reductions.BLOCK) - lo, k0 = kind;
                    want[b] = CanonicalSum.of(len, i -> switch (k0) {
                        case 0 -> Math.abs((double) a[lo + (int) i]);
                        case 1 -> (double) a[lo + (int) i] * a[lo + (int) i];
                        default -> (double) a[lo + (int) i] * c[lo + (int) i];
                    });
                }
                for (long grid : new long[] {1, 2}) {
                    Kernel k = switch (kind) { case 0 -> Kernel.BLOCK_SUM_ABS; case 1 -> Kernel.BLOCK_SUM_SQUARES; default -> Kernel.BLOCK_DOT; };
                    if (kind < 2) dev.launch(k, grid, k.block, da, (long) n, dp, (long) nb);
                    else dev.launch(k, grid, k.block, da, dc, (long) n, dp, (long) nb);
                    double[] got = new double[nb];
                    dev.download(dp, MemorySegment.ofArray(got));
                    for (int b = 0; b < nb; b++) {
                        assertEquals(Double.doubleToRawLongBits(want[b]), Double.doubleToRawLongBits(got[b]),
                                k.entry + " on a grid of " + grid + ": block " + b + " is " + got[b] + ", expected " + want[b]);
                    }
                }
            }
        } finally {
            pool.release(da);
            pool.release(dc);
            pool.release(dp);
        }
    }

    /**
     * mf_chunk_block_sums launched directly on a grid of one block (two warps) for a chunk of five
     * runs at tensor offset 4000: run 0 continues given open stripes and closes its block, three
     * whole blocks, a last run left open — each run's result against the stripes and tree written
     * out in the test, bit for bit; the open stripes come back in their own buffer.
     */
    @Test
    void chunkRunsContinueAndHandBackOpenStripesWhateverTheGrid() {
        long offset = 4000;
        int n = 96 + 3 * Reductions.BLOCK + 100, runs = 5;
        float[] a = BackendConformanceSuite.data(n, 7), c = BackendConformanceSuite.data(n, 8);
        double[] open = new double[64];
        for (int j = 0; j < 64; j++) open[j] = j * 0.375 - 3;
        DeviceBuffer da = pool.borrow(4L * n, "a"), dc = pool.borrow(4L * n, "c"), dp = pool.borrow(8L * runs, "partial");
        DeviceBuffer din = pool.borrow(8L * 64, "open in"), dout = pool.borrow(8L * 64, "open out");
        try {
            dev.upload(MemorySegment.ofArray(a), da);
            dev.upload(MemorySegment.ofArray(c), dc);
            dev.upload(MemorySegment.ofArray(open), din);
            for (int kind = 0; kind < 3; kind++) {
                final int k0 = kind;
                java.util.function.IntToDoubleFunction term = i -> switch (k0) {
                    case 0 -> Math.abs((double) a[i]);
                    case 1 -> (double) a[i] * a[i];
                    default -> (double) a[i] * c[i];
                };
                // run 0: chunk [0, 96) is tensor [4000, 4096): stripes (4000 + i) % 64, continuing open
                double[] s0 = open.clone();
                for (int i = 0; i < 96; i++) s0[(int) ((offset + i) % 64)] += term.applyAsDouble(i);
                double[] want = new double[runs];
                want[0] = CanonicalSum.tree(s0);
                for (int r = 1; r <= 3; r++) {
                    int lo = 96 + (r - 1) * Reductions.BLOCK;
                    want[r] = CanonicalSum.of(Reductions.BLOCK, i -> term.applyAsDouble(lo + (int) i));
                }
                double[] tail = new double[64];
                for (int i = n - 100; i < n; i++) tail[(i - (n - 100)) % 64] += term.applyAsDouble(i);
                dev.launch(Kernel.CHUNK_BLOCK_SUMS, 1, Kernel.CHUNK_BLOCK_SUMS.block, kind, da, dc, (long) n, offset, din, dp, dout, (long) runs);
                double[] got = new double[runs], gotOpen = new double[64];
                dev.download(dp, MemorySegment.ofArray(got));
                dev.download(dout, MemorySegment.ofArray(gotOpen));
                for (int r = 0; r < 4; r++) {
                    assertEquals(Double.doubleToRawLongBits(want[r]), Double.doubleToRawLongBits(got[r]), "kind " + kind + ", run " + r);
                }
                for (int j = 0; j < 64; j++) {
                    assertEquals(Double.doubleToRawLongBits(tail[j]), Double.doubleToRawLongBits(gotOpen[j]), "kind " + kind + ", open stripe " + j);
                }
            }
        } finally {
            for (DeviceBuffer b : new DeviceBuffer[] {da, dc, dp, din, dout}) pool.release(b);
        }
    }
}
