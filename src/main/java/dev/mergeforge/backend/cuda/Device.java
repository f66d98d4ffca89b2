package dev.mergeforge.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * What the device ops need from a GPU: memory, copies ordered with the launches, and launches.
 * {@link CudaContext} is the JCuda implementation; the tests also run the real kernel sources on
 * a host emulator through this interface. Work is queued in order; {@link #download} and
 * {@link #sync} wait for it.
 */
interface Device extends Launcher, AutoCloseable {
    /** A new buffer of {@code bytes} bytes, or null when the device is out of memory. */
    DeviceBuffer tryAllocate(long bytes);

    void free(DeviceBuffer b);

    /** Copies all of src to the start of dst after the work queued so far; src may be reused on return. */
    void upload(MemorySegment src, DeviceBuffer dst);

    /** Copies the first dst.byteSize() bytes of src into dst after the work queued so far; returns when done. */
    void download(DeviceBuffer src, MemorySegment dst);

    /** Queues setting the first {@code bytes} bytes of b to zero. */
    void zero(DeviceBuffer b, long bytes);

    /** Waits for all queued work; a kernel failure surfaces here. */
    void sync();

    /** The raw handle of the stream work is queued on, for FFM-bound libraries (cuSOLVER); 0 = the default stream. */
    default long stream() { return 0L; }

    /** Binds the device to the calling thread (every op starts with it). */
    void makeCurrent();

    /** "cuda:0 (NVIDIA H100 80GB HBM3, 79 GiB)" for the log. */
    String describe();

    @Override void close();
}
