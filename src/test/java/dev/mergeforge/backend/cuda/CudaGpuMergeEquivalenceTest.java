package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Tag;

import java.util.Optional;

/**
 * The end-to-end equivalence of every method on a real GPU through JCuda: the streams, events and
 * pinned staging the emulator runs trivially (tag "gpu"; skips with the reason where there is no
 * GPU). The copy count stays an emulator test. Device: -Dmergeforge.cuda.device=N (default 0).
 */
@Tag("gpu")
class CudaGpuMergeEquivalenceTest extends CudaMergeEquivalenceTest {
    @Override Optional<String> unavailable() { return CudaBackend.unavailableReason(); }

    @Override CudaBackend open() { return new CudaBackend(Integer.getInteger("mergeforge.cuda.device", 0)); }
}
