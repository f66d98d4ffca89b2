package dev.mergeforge.backend.cuda;

/**
 * A region of device memory borrowed from a {@link DeviceBufferPool}; the pool owns and frees it.
 * {@code capacity} is the allocated size in bytes; {@code address} the raw device address (for
 * pointer arrays and cuBLAS); {@code ptr} the JCuda handle, null on a non-JCuda {@link Device}.
 */
final class DeviceBuffer {
    final DevicePtr ptr;
    final long address;
    final long capacity;

    DeviceBuffer(DevicePtr ptr, long capacity) {
        this.ptr = ptr;
        this.address = ptr.address();
        this.capacity = capacity;
    }

    DeviceBuffer(long address, long capacity) {
        this.ptr = null;
        this.address = address;
        this.capacity = capacity;
    }

    long address() { return address; }

    @Override public String toString() { return "DeviceBuffer[" + capacity + " bytes at 0x" + Long.toHexString(address) + "]"; }
}
