package dev.mergeforge.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A {@link Device} whose memory is {@link HostMemory} (filled with 0xA5 garbage on allocation) and that
 * runs no kernels: enough for code that only copies and calls libraries on device addresses
 * (the cuSOLVER solve with {@link HostLapack}), without building the kernel emulator.
 */
final class HostDevice implements Device {
    private final HostMemory memory = new HostMemory();

    @Override public DeviceBuffer tryAllocate(long bytes) { return memory.allocate(bytes); }

    @Override public void free(DeviceBuffer b) { memory.free(b); }

    @Override public void upload(MemorySegment src, DeviceBuffer dst) { HostMemory.upload(src, dst); }

    @Override public void download(DeviceBuffer src, MemorySegment dst) { HostMemory.download(src, dst); }

    /** Synchronous like every copy here: the prefetch stream is the same as the compute stream. */
    @Override public void prefetchUpload(MemorySegment src, DeviceBuffer dst) { upload(src, dst); }

    @Override public Event record(Stream s) { return new Event() {}; }

    @Override public void await(Stream waiter, Event e) { }

    @Override public void destroy(Event e) { }

    @Override public void zero(DeviceBuffer b, long bytes) { HostMemory.zero(b, bytes); }

    @Override public void sync() { }

    @Override public void makeCurrent() { }

    @Override public String describe() { return "host memory"; }

    @Override
    public void launch(Kernel k, long grid, int block, Object... args) {
        throw new UnsupportedOperationException("HostDevice runs no kernels (" + k.entry + ")");
    }

    @Override
    public void close() {
        if (memory.outstanding() > 0) throw new IllegalStateException(memory.outstanding() + " host device buffers not freed");
    }
}
