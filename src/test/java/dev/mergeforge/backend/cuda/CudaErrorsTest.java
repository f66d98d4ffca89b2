package dev.mergeforge.backend.cuda;

import dev.mergeforge.errors.MergeforgeException;
import jcuda.driver.CUresult;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CUDA failures become one-line user errors naming the call and the fix (works without a GPU or driver). */
class CudaErrorsTest {
    @Test
    void resultCodesBecomeOneLineMessagesWithTheFix() {
        assertDoesNotThrow(() -> CudaErrors.check(CUresult.CUDA_SUCCESS, "cuInit"));
        MergeforgeException oom = assertThrows(MergeforgeException.class,
                () -> CudaErrors.check(CUresult.CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc for tensor 'lm_head.weight'"));
        assertTrue(oom.getMessage().startsWith("CUDA error in cuMemAlloc for tensor 'lm_head.weight': CUDA_ERROR_OUT_OF_MEMORY"), oom.getMessage());
        assertTrue(oom.getMessage().contains("--backend java"), oom.getMessage());
        MergeforgeException ptx = assertThrows(MergeforgeException.class, () -> CudaErrors.check(CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "cuModuleLoadData"));
        assertTrue(ptx.getMessage().contains("driver") && ptx.getMessage().contains("nvidia-smi"), ptx.getMessage());
        MergeforgeException dev = assertThrows(MergeforgeException.class, () -> CudaErrors.check(CUresult.CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet"));
        assertTrue(dev.getMessage().contains("--device cuda:N"), dev.getMessage());
        for (MergeforgeException e : new MergeforgeException[] {oom, ptx, dev}) {
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertEquals(1, e.exitCode());
        }
    }

    @Test
    void aNativeLinkFailureIsReducedToTheLinkersLine() {
        UnsatisfiedLinkError e = new UnsatisfiedLinkError("Error while loading native library \"JCudaDriver-12.6.0-linux-x86_64\"\n"
                + "Stack trace from the attempt to load the library as a file:\n"
                + "java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver.so: libcuda.so.1: cannot open shared object file: No such file or directory\n"
                + "\tat java.base/jdk.internal.loader.NativeLibraries.load(Native Method)\n");
        String line = CudaErrors.linkFailure(e);
        assertEquals("UnsatisfiedLinkError: /tmp/libJCudaDriver.so: libcuda.so.1: cannot open shared object file: No such file or directory", line);
    }
}
