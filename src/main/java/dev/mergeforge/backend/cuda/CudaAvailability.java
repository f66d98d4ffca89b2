package dev.mergeforge.backend.cuda;

import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;

/**
 * Decides, without ever crashing the JVM, whether the CUDA backend can run here: the PTX is in
 * the build, the platform matches the bundled JCuda natives, the driver library exists, JCuda's
 * natives load, and cuInit finds a GPU. libcuda is probed through FFM first so that a machine
 * without a driver gets a plain message instead of JCuda's UnsatisfiedLinkError.
 */
final class CudaAvailability {
    static final String DRIVER_LIBRARY = "libcuda.so.1";
    private static Optional<String> cached;
    /** The first JCuda linkage failure: later attempts only see NoClassDefFoundError, which names nothing. */
    private static String jcudaLinkFailure;

    private CudaAvailability() {}

    /** Empty when usable, else a one-line reason with the fix. Computed once. */
    static synchronized Optional<String> reason() {
        if (cached == null) cached = compute();
        return cached;
    }

    private static Optional<String> compute() {
        Optional<String> ptx = missingPtx();
        if (ptx.isPresent()) return ptx;
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return Optional.of("the bundled JCuda natives are for linux-x86_64 only, this is " + os + "/" + arch + "; use --backend java");
        }
        if (!driverLibraryPresent()) {
            return Optional.of("no CUDA driver (" + DRIVER_LIBRARY + " not found): install the NVIDIA driver, or use --backend java");
        }
        return jcudaReason();
    }

    /** Names the first PTX module missing from the class path, if any. */
    static Optional<String> missingPtx() {
        return Arrays.stream(Kernel.values()).map(Kernel::resource).distinct()
                .filter(r -> CudaAvailability.class.getResource(r) == null).findFirst()
                .map(r -> "CUDA kernels are not in this build (no " + r + " on the class path; nvcc was missing when it was built):"
                        + " rebuild with make build where nvcc is installed, or use --backend java");
    }

    /** True when the dynamic linker finds the driver library (FFM lookup, closed again at once). */
    static boolean driverLibraryPresent() {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup.libraryLookup(DRIVER_LIBRARY, arena);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** Loads JCuda's driver natives and runs cuInit; any linkage failure becomes a reason, never a crash. */
    static synchronized Optional<String> jcudaReason() {
        if (jcudaLinkFailure != null) return Optional.of(jcudaLinkFailure);
        try {
            JCudaDriver.setExceptionsEnabled(false);
            int rc = JCudaDriver.cuInit(0);
            if (rc == CUresult.CUDA_ERROR_NO_DEVICE) return Optional.of("no GPU (cuInit: CUDA_ERROR_NO_DEVICE): use --backend java");
            if (rc != CUresult.CUDA_SUCCESS) {
                return Optional.of("the CUDA driver cannot be used (cuInit: " + CudaErrors.describe(rc) + "): check nvidia-smi, or use --backend java");
            }
            int[] count = new int[1];
            rc = JCudaDriver.cuDeviceGetCount(count);
            if (rc != CUresult.CUDA_SUCCESS || count[0] == 0) return Optional.of("no GPU (cuDeviceGetCount found none): use --backend java");
            return Optional.empty();
        } catch (LinkageError e) {
            // without the driver library the linker's own words may be lost (a class that failed to
            // initialise once only says so afterwards): name the library ourselves then
            jcudaLinkFailure = driverLibraryPresent()
                    ? "JCuda's native library failed to load (" + CudaErrors.linkFailure(e) + "): a CUDA 12+ driver is needed, or use --backend java"
                    : "JCuda's native library failed to load (" + DRIVER_LIBRARY + " not found): install the NVIDIA driver, or use --backend java";
            return Optional.of(jcudaLinkFailure);
        }
    }

    /** How many GPUs the driver sees (call only when {@link #reason()} is empty). */
    static int deviceCount() {
        int[] count = new int[1];
        CudaErrors.check(JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount");
        return count[0];
    }
}
