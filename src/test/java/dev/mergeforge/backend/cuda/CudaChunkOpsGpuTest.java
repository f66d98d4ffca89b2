package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Tag;

import java.util.Optional;

/**
 * {@link CudaChunkOpsTest} on a real GPU through JCuda (tag "gpu"; every test skips with the
 * reason where there is none): the chunk kernels as the driver compiles the PTX, run in parallel.
 * Device: -Dmergeforge.cuda.device=N (default 0).
 */
@Tag("gpu")
class CudaChunkOpsGpuTest extends CudaChunkOpsTest {
    @Override Optional<String> unavailable() { return CudaBackend.unavailableReason(); }

    @Override CudaBackend open() { return new CudaBackend(Integer.getInteger("mergeforge.cuda.device", 0)); }
}
