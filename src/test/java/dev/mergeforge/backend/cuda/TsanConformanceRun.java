package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The emulated conformance suite at one size, plus calib.cu's shared-memory kernels: what
 * CudaEmulatedTsanTest runs in a child JVM with ThreadSanitizer preloaded and the emulator built
 * with -fsanitize=thread ({@code -Dmergeforge.emu.lib}). Not a *Test: Surefire does not run it on
 * its own (it would only repeat CudaEmulatedConformanceTest).
 */
class TsanConformanceRun extends BackendConformanceSuite {
    @Override Optional<String> unavailable() { return EmulatedDevice.unavailableReason(); }

    @Override Backend open() { return new CudaBackend(new EmulatedDevice()); }

    // one size that cuts a 4096-element block and chunk: ThreadSanitizer makes the emulator ~10x slower
    @Override long[] sizes() { return new long[] {4097}; }

    @Test
    void calibSharedMemoryKernels() {
        assertEquals(Optional.empty(), CudaEmulatorMutationTest.calibFailure(EmulatedDevice.requireLibrary()));
    }
}
