package dev.mergeforge.backend.cuda;

/**
 * A region of GPU memory borrowed from a {@link DeviceBufferPool}; the pool owns and frees it.
 * {@code capacity} is the allocated size in bytes (at least what was asked for).
 */
final class DeviceBuffer {
    final DevicePtr ptr;
    final long capacity;

    DeviceBuffer(DevicePtr ptr, long capacity) {
        this.ptr = ptr;
        this.capacity = capacity;
    }

    /** Raw device address, for device-side pointer arrays and cuBLAS. */
    long address() { return ptr.address(); }

    @Override public String toString() { return "DeviceBuffer[" + capacity + " bytes at 0x" + Long.toHexString(address()) + "]"; }
}
