package dev.mergeforge.backend.cuda;

import dev.mergeforge.tensor.TensorView;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * Copies the stored bytes of the tensors the merge loads next to the GPU on the copy stream, while
 * the compute stream runs the current tensor's kernels. The merge's read-ahead thread calls
 * {@link #prefetch} once the pages are in; {@link CudaBackend#load} then {@link #claim}s the
 * buffer: the compute stream waits for the copy's event (the host does not) and converts from it.
 *
 * <p>Order across the two streams: a buffer borrowed for a prefetch may have been used by compute
 * work queued before it went back to the pool, so the copy stream first waits for an event
 * recorded on the compute stream at borrow time; a prefetch never claimed is handed back only after
 * the compute stream waits for its copy. Prefetches are kept for two calls (the tensor merging now
 * and the next one), then dropped. A failed prefetch is forgotten: the load copies the bytes itself
 * and reports any error.
 *
 * <p>Locks: {@link #copyLock} serialises prefetch calls (one copy staging) and close; the pool and
 * the table of prefetches are guarded by the backend's lock, which a prefetch holds only to borrow,
 * never while copying. Order: copyLock, then the backend's lock.
 */
final class Prefetcher {
    /** One tensor's bytes on their way to the device. */
    private static final class Pending {
        final MemorySegment src;
        final DeviceBuffer buf;
        final long generation;
        /** Counted down once the copy is queued (or failed); ready and failure are set before. */
        final CountDownLatch queued = new CountDownLatch(1);
        Device.Event ready;
        RuntimeException failure;

        Pending(MemorySegment src, DeviceBuffer buf, long generation) {
            this.src = src;
            this.buf = buf;
            this.generation = generation;
        }
    }

    final Object copyLock = new Object();
    private final Device dev;
    private final DeviceBufferPool pool;
    private final Object backendLock;
    private final Map<MemKey, Pending> pending = new HashMap<>();
    private long generation;
    private boolean closed;

    Prefetcher(Device dev, DeviceBufferPool pool, Object backendLock) {
        this.dev = dev;
        this.pool = pool;
        this.backendLock = backendLock;
    }

    /** Starts copying each view's stored bytes to a device buffer on the copy stream; returns when the copies are queued. */
    void prefetch(List<TensorView> views) {
        synchronized (copyLock) {
            List<Pending> todo = new ArrayList<>();
            Device.Event computed;
            synchronized (backendLock) {
                if (closed) return;
                generation++;
                dropOlderThan(generation - 1);
                for (TensorView v : views) {
                    MemorySegment s = v.data();
                    MemKey key = MemKey.of(s);
                    if (s.byteSize() == 0 || pending.containsKey(key)) continue;
                    DeviceBuffer b = pool.tryBorrow(s.byteSize());
                    if (b == null) break;   // the device is full: the rest load without prefetch
                    Pending p = new Pending(s, b, generation);
                    pending.put(key, p);
                    todo.add(p);
                }
                if (todo.isEmpty()) return;
                dev.makeCurrent();
                computed = dev.record(Device.Stream.COMPUTE);
            }
            queue(todo, computed);
        }
    }

    /** Queues the copies (outside the backend's lock); every pending one ends counted down. */
    private void queue(List<Pending> todo, Device.Event computed) {
        RuntimeException failed = null;
        try {
            // the borrowed buffers' earlier users on the compute stream finish first
            dev.await(Device.Stream.COPY, computed);
        } catch (RuntimeException e) {
            failed = e;
        } finally {
            dev.destroy(computed);
        }
        for (Pending p : todo) {
            try {
                if (failed != null) throw failed;
                dev.prefetchUpload(p.src, p.buf);
                p.ready = dev.record(Device.Stream.COPY);
            } catch (RuntimeException e) {
                p.failure = e;
                failed = e;
            } finally {
                p.queued.countDown();
            }
        }
    }

    /**
     * Under the backend's lock: the device buffer holding src's stored bytes, with the compute
     * stream ordered after their copy, or null when src was not prefetched (or the prefetch
     * failed). The caller owns the buffer and returns it to the pool.
     */
    DeviceBuffer claim(TensorView src) {
        Pending p = pending.remove(MemKey.of(src.data()));
        if (p == null) return null;
        settled(p);
        if (p.failure != null || !p.src.scope().equals(src.data().scope())) {
            pool.release(p.buf);
            return null;
        }
        return p.buf;
    }

    /** Prefetches not yet claimed. */
    int pendingCount() { return pending.size(); }

    /** Under both locks: drops every prefetch; later calls do nothing. */
    void close() {
        closed = true;
        dropOlderThan(Long.MAX_VALUE);
    }

    private void dropOlderThan(long gen) {
        for (Iterator<Pending> it = pending.values().iterator(); it.hasNext(); ) {
            Pending p = it.next();
            if (p.generation >= gen) continue;
            it.remove();
            settled(p);
            pool.release(p.buf);
        }
    }

    /** Waits until p's copy is queued, then orders the compute stream after it (the buffer may then be reused there). */
    private void settled(Pending p) {
        boolean interrupted = false;
        while (true) {
            try {
                p.queued.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        if (p.ready != null) {
            Device.Event e = p.ready;
            p.ready = null;
            try {
                dev.await(Device.Stream.COMPUTE, e);
            } finally {
                dev.destroy(e);
            }
        }
    }
}
