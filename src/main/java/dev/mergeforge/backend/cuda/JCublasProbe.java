package dev.mergeforge.backend.cuda;

import jcuda.jcublas.JCublas2;

import java.util.Optional;

/**
 * Whether JCublas (12.6, in the pom) can load here. Its natives link against libcublas.so.12, so
 * they load only where a CUDA 12.x cuBLAS is installed; a CUDA 13 install has libcublas.so.13 only,
 * which is why calibration GEMMs go through the FFM binding in {@code backend.cuda.cublas}
 * (see docs/cuda.md). Loading never crashes: linkage failures become the reason.
 */
public final class JCublasProbe {
    private static Optional<String> cached;

    private JCublasProbe() {}

    /** Empty when JCublas's natives loaded, else why not. */
    public static synchronized Optional<String> unavailableReason() {
        if (cached == null) cached = probe();
        return cached;
    }

    private static Optional<String> probe() {
        try {
            JCublas2.setExceptionsEnabled(false);
            JCublas2.initialize();
            return Optional.empty();
        } catch (LinkageError e) {
            return Optional.of("JCublas 12.6 cannot load (" + CudaErrors.linkFailure(e) + "); it needs libcublas.so.12 from a CUDA 12.x install");
        }
    }
}
