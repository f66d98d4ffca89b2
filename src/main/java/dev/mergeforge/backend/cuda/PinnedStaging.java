package dev.mergeforge.backend.cuda;

import jcuda.Pointer;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

import java.lang.foreign.MemorySegment;

/**
 * Two page-locked host buffers that carry tiles to and from the GPU in chunks: while the DMA engine
 * moves chunk k out of one buffer, the CPU fills the other with chunk k+1 (and the reverse on the
 * way back). An event per buffer says when its last copy has finished. One instance serves one
 * stream and one thread at a time: the context has one for the compute stream and one for the
 * copy stream the prefetches run on.
 */
final class PinnedStaging implements AutoCloseable {
    static final long CHUNK = 16L << 20;

    private final CUstream stream;
    private final Pointer[] host = new Pointer[2];
    private final MemorySegment[] seg = new MemorySegment[2];
    private final CUevent[] done = {new CUevent(), new CUevent()};
    private int allocated, events;
    /** The buffer the next chunk uses: consecutive copies alternate, also across calls. */
    private int next;

    PinnedStaging(CUstream stream) {
        this.stream = stream;
        try {
            for (int b = 0; b < 2; b++) {
                host[b] = new Pointer();
                CudaErrors.check(JCudaDriver.cuMemHostAlloc(host[b], CHUNK, 0), "cuMemHostAlloc of " + CHUNK + " pinned bytes");
                allocated++;
                // the chunk is < 2 GiB, so one direct ByteBuffer view covers it
                seg[b] = MemorySegment.ofBuffer(host[b].getByteBuffer(0, CHUNK));
                CudaErrors.check(JCudaDriver.cuEventCreate(done[b], CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
                events++;
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Queues the copy of all of src into dst (from byte 0); returns when src may be reused. */
    void upload(MemorySegment src, DeviceBuffer dst) {
        long n = src.byteSize();
        if (n > dst.capacity) throw new IllegalArgumentException(n + " bytes do not fit " + dst);
        for (long off = 0; off < n; off += CHUNK) {
            int b = next;
            next ^= 1;
            long len = Math.min(CHUNK, n - off);
            // the buffer's previous copy must have left it before it is refilled
            CudaErrors.check(JCudaDriver.cuEventSynchronize(done[b]), "cuEventSynchronize (host to device copy)");
            MemorySegment.copy(src, off, seg[b], 0, len);
            CudaErrors.check(JCudaDriver.cuMemcpyHtoDAsync(dst.ptr.withByteOffset(dst.offset + off), host[b], len, stream), "cuMemcpyHtoDAsync");
            CudaErrors.check(JCudaDriver.cuEventRecord(done[b], stream), "cuEventRecord");
        }
    }

    /** Copies the first dst.byteSize() bytes of src into dst once the queued work before it is done. */
    void download(DeviceBuffer src, MemorySegment dst) {
        long n = dst.byteSize();
        if (n > src.capacity) throw new IllegalArgumentException(n + " bytes requested from " + src);
        if (n == 0) return;
        long chunks = (n + CHUNK - 1) / CHUNK;
        int first = next;
        queueDownload(src, 0, n, first);
        for (long k = 0; k < chunks; k++) {
            // while chunk k is copied out of its buffer, chunk k+1 is already on its way into the other
            if (k + 1 < chunks) queueDownload(src, k + 1, n, first);
            int b = (int) ((first + k) & 1);
            CudaErrors.check(JCudaDriver.cuEventSynchronize(done[b]), "cuEventSynchronize (device to host copy; a kernel may have failed)");
            long off = k * CHUNK;
            MemorySegment.copy(seg[b], 0, dst, off, Math.min(CHUNK, n - off));
        }
        next = (int) ((first + chunks) & 1);
    }

    private void queueDownload(DeviceBuffer src, long k, long n, int first) {
        int b = (int) ((first + k) & 1);
        long off = k * CHUNK, len = Math.min(CHUNK, n - off);
        CudaErrors.check(JCudaDriver.cuMemcpyDtoHAsync(host[b], src.ptr.withByteOffset(src.offset + off), len, stream), "cuMemcpyDtoHAsync");
        CudaErrors.check(JCudaDriver.cuEventRecord(done[b], stream), "cuEventRecord");
    }

    @Override
    public void close() {
        for (int b = 0; b < events; b++) JCudaDriver.cuEventDestroy(done[b]);
        for (int b = 0; b < allocated; b++) JCudaDriver.cuMemFreeHost(host[b]);
        events = 0;
        allocated = 0;
    }
}
