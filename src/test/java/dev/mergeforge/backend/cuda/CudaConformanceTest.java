package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.errors.ConfigException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The conformance suite on a real GPU through JCuda (tag "gpu"; every test skips with the reason
 * where there is none), plus the GPU's resource and error behaviour. Device:
 * -Dmergeforge.cuda.device=N (default 0).
 */
@Tag("gpu")
class CudaConformanceTest extends BackendConformanceSuite {
    @Override Optional<String> unavailable() { return CudaBackend.unavailableReason(); }

    @Override Backend open() { return new CudaBackend(Integer.getInteger("mergeforge.cuda.device", 0)); }

    @Override long[] sizes() { return new long[] {1, 3, 4095, 4097, 3 * 4096 + 5, 100_003}; }

    CudaBackend gpu() { return (CudaBackend) cuda; }

    // ---------------------------------------------------------------- resources and errors

    @Test
    void poolRefusesToCloseWithBuffersOut() {
        gpu().deviceOps().dev.makeCurrent();
        DeviceBufferPool pool = new DeviceBufferPool(gpu().deviceOps().dev);
        DeviceBuffer b = pool.borrow(1000, "test");
        assertTrue(b.address() != 0 && b.capacity >= 1000);
        assertThrows(IllegalStateException.class, pool::close);
        pool.release(b);
        assertEquals(b, pool.borrow(900, "test again"), "reused best fit");
        pool.release(b);
        pool.close();
        assertEquals(0, pool.allocatedBytes());
    }

    @Test
    void deviceOutOfRangeIsAConfigError() {
        ConfigException e = assertThrows(ConfigException.class, () -> new CudaBackend(999));
        assertTrue(e.getMessage().startsWith("--device cuda:999: this machine has "), e.getMessage());
    }
}
