package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The pool's reuse rule: unbounded, a free buffer about the size serves; under a budget only one of the exact size. */
class DeviceBufferPoolTest {
    @Test
    void aBudgetedPoolGivesASmallRequestNoLargeFreeBuffer() {
        // the chunk ops' case: a freed 512 KiB histogram buffer, then a few-KiB tile, then the histogram again
        try (DeviceBufferPool pool = new DeviceBufferPool(new HostDevice(), (512 << 10) + 4096)) {
            DeviceBuffer hist = pool.borrow(512 << 10, "histogram");
            pool.release(hist);
            DeviceBuffer tile = pool.borrow(2112, "tile");
            assertEquals(2304, tile.capacity, "the tile gets its own size (aligned to 256), not the free 512 KiB");
            DeviceBuffer again = pool.borrow(512 << 10, "histogram");
            assertSame(hist, again, "the histogram buffer was kept for the histogram");
            assertEquals((512 << 10) + 2304, pool.allocatedBytes());
            // a request past what the budget leaves is the caller's bug, named
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.borrow(4096, "extra"));
            assertEquals("4096 more device bytes for extra would pass the device budget of 528384 bytes (526592 held)", e.getMessage());
            pool.release(tile);
            pool.release(again);
        }
    }

    @Test
    void anUnboundedPoolReusesABufferAboutTheSize() {
        try (DeviceBufferPool pool = new DeviceBufferPool(new HostDevice())) {
            DeviceBuffer big = pool.borrow(1 << 20, "tile");
            pool.release(big);
            DeviceBuffer smaller = pool.borrow(600 << 10, "smaller tile");
            assertSame(big, smaller, "within twice the size plus 1 MiB: no new allocation");
            assertEquals(1 << 20, pool.allocatedBytes());
            pool.release(smaller);
        }
    }
}
