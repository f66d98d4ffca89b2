package dev.mergeforge.backend.cuda;

import jcuda.driver.CUresult;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Owns the GPU memory of one backend: buffers are borrowed (for one op, or for as long as a tile
 * stays resident) and returned, reused best fit by capacity (under a budget, only at their exact
 * size), so a merge allocates about what its working tiles need, once. When cuMemAlloc runs out of memory the free buffers are released and the allocation retried. Closing frees
 * everything and refuses while buffers are out. Not thread-safe: the backend serialises ops.
 */
public final class DeviceBufferPool implements AutoCloseable {
    private static final long ALIGN = 256;

    private final Device dev;
    /** The most GPU bytes this pool may hold (Long.MAX_VALUE: as much as the device gives). */
    private final long limit;
    private final List<DeviceBuffer> free = new ArrayList<>();
    private final Set<DeviceBuffer> out = Collections.newSetFromMap(new IdentityHashMap<>());
    private long allocatedBytes;
    private boolean closed;

    public DeviceBufferPool(Device dev) { this(dev, Long.MAX_VALUE); }

    /** A pool that never holds more than {@code limitBytes} (the chunk ops' --device-memory budget). */
    DeviceBufferPool(Device dev, long limitBytes) {
        if (limitBytes <= 0) throw new IllegalArgumentException("device pool limit " + limitBytes);
        this.dev = dev;
        this.limit = limitBytes;
    }

    /** A buffer of at least {@code bytes} bytes (contents undefined); {@code what} names it in errors. */
    public DeviceBuffer borrow(long bytes, String what) {
        DeviceBuffer b = tryBorrow(bytes);
        if (b == null && allocatedBytes + align(bytes) > limit) {
            // the caller sized its work to the budget, so passing it is a bug, not a user error
            throw new IllegalStateException(bytes + " more device bytes for " + what + " would pass the device budget of " + limit
                    + " bytes (" + allocatedBytes + " held)");
        }
        if (b == null) CudaErrors.check(CUresult.CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc of " + bytes + " bytes for " + what);
        return b;
    }

    /** Like {@link #borrow}, but null when the device is out of memory (for work that is optional, like prefetching). */
    DeviceBuffer tryBorrow(long bytes) {
        if (closed) throw new IllegalStateException("device buffer pool is closed");
        long need = align(bytes);
        DeviceBuffer best = null;
        for (DeviceBuffer b : free) {
            if (b.capacity >= need && (best == null || b.capacity < best.capacity)) best = b;
        }
        // unbounded, any free buffer up to about twice the size saves a cuMemAlloc; under a budget only
        // one of exactly the size, since the callers sized their work to the budget in exact bytes (a
        // few-KiB tile that took a freed 512 KiB histogram buffer left the next histogram no room)
        if (best != null && (limit == Long.MAX_VALUE ? best.capacity <= need * 2 + (1 << 20) : best.capacity == need)) {
            free.remove(best);
        } else {
            best = allocate(need);
            if (best == null) return null;
        }
        out.add(best);
        return best;
    }

    private static long align(long bytes) { return Math.max(ALIGN, (bytes + ALIGN - 1) / ALIGN * ALIGN); }

    private DeviceBuffer allocate(long need) {
        if (allocatedBytes + need > limit) {
            releaseFree();
            if (allocatedBytes + need > limit) return null;
        }
        DeviceBuffer b = dev.tryAllocate(need);
        if (b == null && !free.isEmpty()) {
            releaseFree();
            b = dev.tryAllocate(need);
        }
        if (b != null) allocatedBytes += need;
        return b;
    }

    /** Returns a borrowed buffer. */
    public void release(DeviceBuffer b) {
        if (!out.remove(b)) throw new IllegalStateException(b + " was not borrowed from this pool");
        free.add(b);
    }

    private void releaseFree() {
        for (DeviceBuffer b : free) {
            dev.free(b);
            allocatedBytes -= b.capacity;
        }
        free.clear();
    }

    /** Frees the buffers nobody has borrowed (a finished tensor's, so the rest of the GPU has them back). */
    void trim() { releaseFree(); }

    /** GPU bytes this pool holds now. */
    long allocatedBytes() { return allocatedBytes; }

    int outstanding() { return out.size(); }

    @Override
    public void close() {
        if (closed) return;
        if (!out.isEmpty()) throw new IllegalStateException("device buffer pool closed with " + out.size() + " buffers still borrowed");
        closed = true;
        releaseFree();
    }
}
