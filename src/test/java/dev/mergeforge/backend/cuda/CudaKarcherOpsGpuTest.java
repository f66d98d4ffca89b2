package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Tag;

import java.util.Optional;

/**
 * {@link CudaKarcherOpsTest} on a real GPU through JCuda (tag "gpu"; skips with the reason where
 * there is none): karcher's fused kernels as the driver compiles the PTX.
 * Device: -Dmergeforge.cuda.device=N (default 0).
 */
@Tag("gpu")
class CudaKarcherOpsGpuTest extends CudaKarcherOpsTest {
    @Override Optional<String> unavailable() { return CudaBackend.unavailableReason(); }

    @Override CudaBackend open() { return new CudaBackend(Integer.getInteger("mergeforge.cuda.device", 0)); }
}
