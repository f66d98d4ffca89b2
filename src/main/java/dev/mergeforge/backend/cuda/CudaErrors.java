package dev.mergeforge.backend.cuda;

import dev.mergeforge.errors.MergeforgeException;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/** Turns CUDA driver result codes into {@link MergeforgeException}s whose message says what to do. */
final class CudaErrors {
    private CudaErrors() {}

    /** Throws unless rc is CUDA_SUCCESS; {@code what} names the call and its subject. */
    static void check(int rc, String what) {
        if (rc != CUresult.CUDA_SUCCESS) throw new MergeforgeException("CUDA error in " + what + ": " + describe(rc) + hint(rc));
    }

    /** "CUDA_ERROR_X (driver's description)". */
    static String describe(int rc) {
        String name = CUresult.stringFor(rc);
        // without the driver JCuda's natives cannot load: do not try (a failed class initialisation
        // would hide CudaAvailability's first, informative link error behind a bare NoClassDefFoundError)
        if (!CudaAvailability.driverLibraryPresent()) return name;
        try {
            String[] s = new String[1];
            if (JCudaDriver.cuGetErrorString(rc, s) == CUresult.CUDA_SUCCESS && s[0] != null) return name + " (" + s[0] + ")";
        } catch (LinkageError e) {
            // natives unusable: the name alone must do
        }
        return name;
    }

    /**
     * One line from a native-library loading failure: JCuda's UnsatisfiedLinkError carries whole
     * stack traces in its message; the line the dynamic linker wrote ("...: cannot open shared
     * object file ...") is the one that says what is missing.
     */
    static String linkFailure(Throwable e) {
        // a class whose initialisation failed earlier fails again with a bare NoClassDefFoundError;
        // the JDK keeps the original failure in its cause chain: report that one
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            if (String.valueOf(c.getMessage()).contains("UnsatisfiedLinkError") || c instanceof UnsatisfiedLinkError) {
                e = c;
                break;
            }
        }
        String msg = String.valueOf(e.getMessage());
        String first = msg.lines().findFirst().orElse("").strip();
        String linker = msg.lines().filter(l -> l.contains("cannot open shared object file") || l.contains("undefined symbol"))
                .reduce((a, b) -> b).orElse(null);
        String line = linker != null ? linker.strip().replaceFirst("^java\\.lang\\.UnsatisfiedLinkError: ", "") : first;
        return e.getClass().getSimpleName() + ": " + line;
    }

    private static String hint(int rc) {
        return switch (rc) {
            case CUresult.CUDA_ERROR_OUT_OF_MEMORY ->
                    "; the tensors of this op do not fit in GPU memory: use --backend java or a GPU with more memory";
            case CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION, CUresult.CUDA_ERROR_INVALID_PTX,
                 CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU, CUresult.CUDA_ERROR_INVALID_IMAGE ->
                    "; the kernels are PTX ISA 7.0 for compute_80: the GPU must be Ampere or newer and the driver"
                            + " CUDA 11.0 or newer (check nvidia-smi), or use --backend java";
            case CUresult.CUDA_ERROR_NO_DEVICE, CUresult.CUDA_ERROR_INVALID_DEVICE ->
                    "; check --device cuda:N against nvidia-smi";
            default -> "";
        };
    }
}
