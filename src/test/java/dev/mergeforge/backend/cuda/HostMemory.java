package dev.mergeforge.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * "Device" memory that is host memory, for the test devices ({@link HostDevice},
 * {@link EmulatedDevice}): each buffer owns a shared arena, 256-byte aligned and filled with 0xA5
 * garbage when allocated, so reading bytes nobody wrote shows up as a mismatch. Copies are
 * synchronous and check the buffer's capacity as a real device would.
 */
final class HostMemory {
    private final Map<Long, Arena> buffers = new HashMap<>();

    private static MemorySegment seg(DeviceBuffer b) { return MemorySegment.ofAddress(b.address).reinterpret(b.capacity); }

    DeviceBuffer allocate(long bytes) {
        Arena a = Arena.ofShared();
        MemorySegment s = a.allocate(bytes, 256);
        s.fill((byte) 0xA5);
        buffers.put(s.address(), a);
        return new DeviceBuffer(s.address(), bytes);
    }

    void free(DeviceBuffer b) {
        Arena a = buffers.remove(b.address);
        if (a == null) throw new IllegalStateException("free of unknown " + b);
        a.close();
    }

    static void upload(MemorySegment src, DeviceBuffer dst) {
        if (src.byteSize() > dst.capacity) throw new IllegalArgumentException(src.byteSize() + " bytes do not fit " + dst);
        MemorySegment.copy(src, 0, seg(dst), 0, src.byteSize());
    }

    static void download(DeviceBuffer src, MemorySegment dst) {
        if (dst.byteSize() > src.capacity) throw new IllegalArgumentException(dst.byteSize() + " bytes requested from " + src);
        MemorySegment.copy(seg(src), 0, dst, 0, dst.byteSize());
    }

    static void zero(DeviceBuffer b, long bytes) { seg(b).asSlice(0, bytes).fill((byte) 0); }

    /** Buffers allocated and not yet freed. */
    int outstanding() { return buffers.size(); }
}
