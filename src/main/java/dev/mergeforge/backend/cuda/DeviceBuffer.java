package dev.mergeforge.backend.cuda;

/**
 * A region of device memory borrowed from a {@link DeviceBufferPool}; the pool owns and frees it.
 * {@code capacity} is the allocated size in bytes; {@code address} the raw device address (for
 * pointer arrays and cuBLAS); {@code ptr} the JCuda handle of the allocation, null on a non-JCuda
 * {@link Device}. A {@link #slice} is a view {@code offset} bytes into its allocation (same ptr):
 * launches, copies and cuBLAS take it like any buffer, but only the allocation is released or freed.
 */
public final class DeviceBuffer {
    final DevicePtr ptr;
    public final long address;
    public final long capacity;
    /** Bytes from the start of the allocation {@code ptr} (0 unless a slice). */
    final long offset;

    DeviceBuffer(DevicePtr ptr, long capacity) {
        this(ptr, ptr.address(), capacity, 0);
    }

    DeviceBuffer(long address, long capacity) {
        this(null, address, capacity, 0);
    }

    private DeviceBuffer(DevicePtr ptr, long address, long capacity, long offset) {
        this.ptr = ptr;
        this.address = address;
        this.capacity = capacity;
        this.offset = offset;
    }

    /** The {@code bytes} bytes starting {@code from} bytes into this buffer. */
    public DeviceBuffer slice(long from, long bytes) {
        if (from < 0 || bytes < 0 || from + bytes > capacity) {
            throw new IllegalArgumentException("slice [" + from + ", " + (from + bytes) + ") outside " + this);
        }
        return new DeviceBuffer(ptr, address + from, bytes, offset + from);
    }

    long address() { return address; }

    @Override public String toString() { return "DeviceBuffer[" + capacity + " bytes at 0x" + Long.toHexString(address) + "]"; }
}
