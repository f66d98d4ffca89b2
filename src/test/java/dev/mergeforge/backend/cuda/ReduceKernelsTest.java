package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Reductions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * kernels/reduce.cu's partial sums on the emulator against each canonical block summed left to
 * right in double (the definition in {@link Reductions}), bit for bit, over more canonical blocks
 * than one CUDA block owns (64) and with grids smaller than the work, so the staged tiles, the
 * short last block and the grid-stride over groups of 64 are all crossed.
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
                    double s = 0.0;
                    for (int i = b * Reductions.BLOCK; i < Math.min(n, (b + 1) * Reductions.BLOCK); i++) {
                        s += switch (kind) {
                            case 0 -> Math.abs((double) a[i]);
                            case 1 -> (double) a[i] * a[i];
                            default -> (double) a[i] * c[i];
                        };
                    }
                    want[b] = s;
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
}
