package dev.mergeforge.backend.cuda;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs everywhere: asking about CUDA on a machine without it gives a reason, never a crash. */
class CudaAvailabilityTest {

    @Test
    void reasonIsStableAndOneLine() {
        Optional<String> r = CudaBackend.unavailableReason();
        assertEquals(r, CudaBackend.unavailableReason(), "the answer is computed once");
        r.ifPresent(s -> {
            assertTrue(!s.isBlank() && !s.contains("\n"), "one-line reason: " + s);
            assertTrue(s.contains("--backend java") || s.contains("make build"), "the reason names a fix: " + s);
        });
    }

    @Test
    void withoutDriverTheReasonNamesLibcuda() {
        if (CudaAvailability.missingPtx().isPresent()) return; // the PTX check comes first (see missingPtxNamesTheFix)
        if (CudaAvailability.driverLibraryPresent()) return;  // a machine with a driver: nothing to check here
        String r = CudaBackend.unavailableReason().orElseThrow();
        assertTrue(r.startsWith("no CUDA driver (libcuda.so.1 not found)"), r);
    }

    @Test
    void loadingJCudaWithoutDriverIsCaught() {
        // JCuda's natives link against libcuda.so.1: where it is absent the UnsatisfiedLinkError
        // must come back as a reason (this calls into JCuda even though reason() would not).
        if (CudaAvailability.driverLibraryPresent()) return;
        Optional<String> r = CudaAvailability.jcudaReason();
        assertTrue(r.isPresent() && r.get().contains("JCuda's native library failed to load"), r.toString());
        assertTrue(r.get().contains("libcuda.so.1") && !r.get().contains("\n"), "one line naming the missing library: " + r.get());
        // a second attempt (JCudaDriver now fails with a bare NoClassDefFoundError) keeps the first reason
        assertEquals(r, CudaAvailability.jcudaReason());
    }

    @Test
    void constructingWithoutGpuThrowsTheReason() {
        Optional<String> r = CudaBackend.unavailableReason();
        if (r.isEmpty()) return; // GPU machine: CudaConformanceTest covers construction
        MergeforgeException e = assertThrows(MergeforgeException.class, () -> new CudaBackend(0));
        assertEquals("--backend cuda is unavailable: " + r.get(), e.getMessage());
    }

    @Test
    void deviceSpecParses() {
        assertEquals(0, CudaBackend.deviceIndex("cuda"));
        assertEquals(3, CudaBackend.deviceIndex("cuda:3"));
        for (String bad : new String[] {"cuda:", "cuda:-1", "gpu:0", "cuda:x"}) {
            ConfigException e = assertThrows(ConfigException.class, () -> CudaBackend.deviceIndex(bad));
            assertTrue(e.getMessage().startsWith("--device " + bad + ": expected cuda or cuda:N"), e.getMessage());
        }
    }
}
