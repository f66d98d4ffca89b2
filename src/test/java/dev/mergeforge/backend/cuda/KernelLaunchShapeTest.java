package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kernels written for one block size (their {@code __launch_bounds__}, {@link Kernel#block}) are
 * refused at launch with any other, in one line, before anything runs: on the emulator here (the
 * same {@link Kernel#checkLaunch} guards {@link CudaContext#launch}). CudaPtxTest ties
 * {@link Kernel#block} to the PTX's {@code .maxntid}.
 */
class KernelLaunchShapeTest {
    @Test
    void theKernelsThatAssumeABlockSizeDeclareIt() {
        // the shared-memory kernels that index by threadIdx.x within a fixed layout
        for (Kernel k : List.of(Kernel.BLOCK_SUM_ABS, Kernel.BLOCK_SUM_SQUARES, Kernel.BLOCK_DOT, Kernel.RMSNORM)) assertEquals(64, k.block, k.entry);
        for (Kernel k : List.of(Kernel.EQ_COUNT, Kernel.KEEP_RANK_MASK, Kernel.ATTENTION)) assertEquals(256, k.block, k.entry);
        // grid-stride kernels take any block size
        for (Kernel k : List.of(Kernel.SUB, Kernel.RADIX_HIST, Kernel.DISJOINT_MERGE, Kernel.ABS_SUM_COLS)) assertEquals(0, k.block, k.entry);
    }

    @Test
    void aLaunchWithAnotherBlockSizeIsRefusedInOneLineAndRunsNothing() {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        try (EmulatedDevice dev = new EmulatedDevice()) {
            DeviceBufferPool pool = new DeviceBufferPool(dev);
            DeviceBuffer x = pool.borrow(4 * 4096, "x"), partial = pool.borrow(8, "partial");
            float[] ones = new float[4096];
            java.util.Arrays.fill(ones, 1f);
            dev.upload(MemorySegment.ofArray(ones), x);
            double[] before = {-7.0};
            dev.upload(MemorySegment.ofArray(before), partial);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> dev.launch(Kernel.BLOCK_SUM_ABS, 1, 128, x, 4096L, partial, 1L));
            assertEquals("kernel mf_block_sum_abs is written for blocks of 64 threads (its __launch_bounds__) but was launched with 128:"
                    + " launch it with Kernel.BLOCK_SUM_ABS.block", e.getMessage());
            assertFalse(e.getMessage().contains("\n"));
            double[] after = new double[1];
            dev.download(partial, MemorySegment.ofArray(after));
            assertArrayEquals(before, after, "nothing ran");
            // the declared size runs (and sums the block)
            dev.launch(Kernel.BLOCK_SUM_ABS, 1, Kernel.BLOCK_SUM_ABS.block, x, 4096L, partial, 1L);
            dev.download(partial, MemorySegment.ofArray(after));
            assertEquals(4096.0, after[0]);
            for (Kernel k : Kernel.values()) {
                if (k.block == 0) continue;
                IllegalStateException f = assertThrows(IllegalStateException.class, () -> k.checkLaunch(k.block / 2));
                assertTrue(f.getMessage().startsWith("kernel " + k.entry + " is written for blocks of " + k.block + " threads"), f.getMessage());
            }
            pool.release(x);
            pool.release(partial);
            pool.close();
        }
    }
}
