package dev.mergeforge.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * What the device ops need from a GPU: memory, copies ordered with the launches, and launches.
 * {@link CudaContext} is the JCuda implementation; the tests also run the real kernel sources on
 * a host emulator through this interface.
 *
 * <p>Two in-order queues ({@link Stream}): kernels, {@link #upload}, {@link #download} and
 * {@link #zero} go on COMPUTE; {@link #prefetchUpload} goes on COPY, which runs beside it. Work on
 * one stream waits for the other only through an {@link Event} ({@link #await}). {@link #download}
 * and {@link #sync} wait for the compute stream. The tests' emulator runs the two queues out of
 * order within exactly these rules, so host code that leans on anything more fails there.
 */
public interface Device extends Launcher, AutoCloseable {
    /** The device's queues: COMPUTE for kernels and their copies, COPY for prefetching copies to the device. */
    enum Stream { COMPUTE, COPY }

    /** A point in one stream's queue that work on the other stream can wait for. */
    interface Event {}

    /** A new buffer of {@code bytes} bytes, or null when the device is out of memory. */
    DeviceBuffer tryAllocate(long bytes);

    void free(DeviceBuffer b);

    /** Copies all of src to the start of dst on the compute stream, after the work queued so far; src may be reused on return. */
    void upload(MemorySegment src, DeviceBuffer dst);

    /**
     * Copies all of src to the start of dst on the copy stream (through its own pinned staging);
     * src may be reused on return. Called by one thread at a time, which need not be the thread
     * queueing the compute work.
     */
    void prefetchUpload(MemorySegment src, DeviceBuffer dst);

    /** Copies the first dst.byteSize() bytes of src into dst after the compute stream's queued work; returns when done. */
    void download(DeviceBuffer src, MemorySegment dst);

    /** Queues setting the first {@code bytes} bytes of b to zero on the compute stream. */
    void zero(DeviceBuffer b, long bytes);

    /** An event after the work queued on stream s so far. Give it back with {@link #destroy}. */
    Event record(Stream s);

    /** Work queued on {@code waiter} from now on starts after e; the host does not wait. */
    void await(Stream waiter, Event e);

    /** Frees an event; allowed while a queued {@link #await} on it is still pending. */
    void destroy(Event e);

    /** Waits for all work queued on the compute stream; a kernel failure surfaces here. */
    void sync();

    /** The raw handle of the stream work is queued on, for FFM-bound libraries (cuSOLVER); 0 = the default stream. */
    default long stream() { return 0L; }

    /** Binds the device to the calling thread (every op, and every prefetch, starts with it). */
    void makeCurrent();

    /** "cuda:0 (NVIDIA H100 80GB HBM3, 79 GiB)" for the log. */
    String describe();

    @Override void close();
}
