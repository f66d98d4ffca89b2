package dev.mergeforge.backend.cuda;

import dev.mergeforge.tensor.TensorView;

import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The stored bytes of input chunks kept on the device between the passes of one tensor
 * ({@link CudaChunkOps}): a later pass widens a kept chunk on the device instead of copying it up
 * again. Chunks are kept in the order they are first loaded while the room the device budget
 * leaves beside the working tiles lasts, and never evicted before the tensor ends: the passes walk
 * the chunks in the same order, so keeping the first ones and streaming the rest beats any
 * eviction, which would throw each chunk out just before the next pass wants it. Cleared when the
 * tensor's chunk tiles go back to the pool. Not thread-safe: used under the backend's lock.
 */
final class StoredChunks {
    /** A kept chunk: its {@code elements} stored values on the device and whether one is NaN or ±Inf. */
    record Kept(DeviceBuffer buf, long elements, boolean nonFinite) {}

    private final DeviceBufferPool pool;
    private final Map<TensorView, Map<Long, Kept>> kept = new IdentityHashMap<>();
    /** The chunks of this tensor copied up so far, to count the copies that were repeats. */
    private final Map<TensorView, java.util.Set<Long>> seen = new IdentityHashMap<>();
    private long room, bytes, uploads, reuploads, hits;

    StoredChunks(DeviceBufferPool pool) { this.pool = pool; }

    /** Room for kept chunks from now on (the device budget less the working tiles); 0 keeps nothing. */
    void room(long bytes) { this.room = Math.max(0, bytes); }

    /** Whether v's chunk of n elements at {@code from} is kept (not counted as a use). */
    boolean has(TensorView v, long from, long n) {
        Map<Long, Kept> m = kept.get(v);
        Kept k = m == null ? null : m.get(from);
        return k != null && k.elements() == n;
    }

    /** The kept chunk of n elements of v starting at element {@code from}, or null. */
    Kept get(TensorView v, long from, long n) {
        if (!has(v, from, n)) return null;
        hits++;
        return kept.get(v).get(from);
    }

    /** A device buffer to upload v's chunk at {@code from} into that {@link #keep} may then keep, or null when there is no room left. */
    DeviceBuffer reserve(TensorView v, long from, long storedBytes) {
        uploads++;
        if (!seen.computeIfAbsent(v, x -> new java.util.HashSet<>()).add(from)) reuploads++;
        if (bytes + storedBytes > room) return null;
        return pool.tryBorrow(storedBytes);
    }

    /** Keeps a buffer {@link #reserve} gave, holding v's chunk of n elements at {@code from}. */
    void keep(TensorView v, long from, long n, DeviceBuffer buf, boolean nonFinite) {
        Kept old = kept.computeIfAbsent(v, x -> new HashMap<>()).put(from, new Kept(buf, n, nonFinite));
        bytes += buf.capacity;
        if (old != null) {   // the same start with another length (a caller cutting differently): the newer wins
            bytes -= old.buf().capacity;
            pool.release(old.buf());
        }
    }

    /** Device bytes kept now. */
    long bytes() { return bytes; }

    /** Loads served from the device / loads that copied their chunk up, since the backend opened (tests, the log). */
    long hits() { return hits; }

    long uploads() { return uploads; }

    /** Loads that copied up a chunk an earlier pass of the same tensor had copied up already (it did not fit). */
    long reuploads() { return reuploads; }

    /** Gives every kept chunk back to the pool (the tensor is done). */
    void clear() {
        for (Map<Long, Kept> m : kept.values()) for (Kept k : m.values()) pool.release(k.buf());
        kept.clear();
        seen.clear();
        bytes = 0;
    }
}
