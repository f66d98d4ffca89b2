package dev.mergeforge.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * A {@link Device} whose memory is host memory (filled with 0xA5 garbage on allocation) and that
 * runs no kernels: enough for code that only copies and calls libraries on device addresses
 * (the cuSOLVER solve with {@link HostLapack}), without building the kernel emulator.
 */
final class HostDevice implements Device {
    private final Map<Long, Arena> buffers = new HashMap<>();

    private static MemorySegment seg(DeviceBuffer b) { return MemorySegment.ofAddress(b.address).reinterpret(b.capacity); }

    @Override
    public DeviceBuffer tryAllocate(long bytes) {
        Arena a = Arena.ofShared();
        MemorySegment s = a.allocate(bytes, 256);
        s.fill((byte) 0xA5);
        buffers.put(s.address(), a);
        return new DeviceBuffer(s.address(), bytes);
    }

    @Override
    public void free(DeviceBuffer b) {
        Arena a = buffers.remove(b.address);
        if (a == null) throw new IllegalStateException("free of unknown " + b);
        a.close();
    }

    @Override
    public void upload(MemorySegment src, DeviceBuffer dst) {
        if (src.byteSize() > dst.capacity) throw new IllegalArgumentException(src.byteSize() + " bytes do not fit " + dst);
        MemorySegment.copy(src, 0, seg(dst), 0, src.byteSize());
    }

    @Override
    public void download(DeviceBuffer src, MemorySegment dst) {
        if (dst.byteSize() > src.capacity) throw new IllegalArgumentException(dst.byteSize() + " bytes requested from " + src);
        MemorySegment.copy(seg(src), 0, dst, 0, dst.byteSize());
    }

    /** Synchronous like every copy here: the prefetch stream is the same as the compute stream. */
    @Override public void prefetchUpload(MemorySegment src, DeviceBuffer dst) { upload(src, dst); }

    @Override public Event record(Stream s) { return new Event() {}; }

    @Override public void await(Stream waiter, Event e) { }

    @Override public void destroy(Event e) { }

    @Override public void zero(DeviceBuffer b, long bytes) { seg(b).asSlice(0, bytes).fill((byte) 0); }

    @Override public void sync() { }

    @Override public void makeCurrent() { }

    @Override public String describe() { return "host memory"; }

    @Override
    public void launch(Kernel k, long grid, int block, Object... args) {
        throw new UnsupportedOperationException("HostDevice runs no kernels (" + k.entry + ")");
    }

    @Override
    public void close() {
        if (!buffers.isEmpty()) throw new IllegalStateException(buffers.size() + " host device buffers not freed");
    }
}
