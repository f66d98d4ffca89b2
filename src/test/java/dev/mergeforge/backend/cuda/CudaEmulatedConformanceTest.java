package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;

import java.util.Optional;

/**
 * Runs without a GPU: the whole CUDA backend — CudaBackend, DeviceOps, DeviceRankSelect, the pool
 * and the real kernel sources — on the host emulator of the kernels, through the same conformance
 * suite the GPU runs. What it cannot show: JCuda calls, PTX compilation by the driver, real
 * parallel execution (races, memory ordering), performance.
 */
class CudaEmulatedConformanceTest extends BackendConformanceSuite {
    @Override Optional<String> unavailable() { return EmulatedDevice.unavailableReason(); }

    @Override Backend open() { return new CudaBackend(new EmulatedDevice()); }

    // sizes that cut 4096-element blocks and chunks unevenly, kept small: the emulator is slow
    @Override long[] sizes() { return new long[] {1, 3, 4095, 4097, 2 * 4096 + 5}; }
}
