package dev.mergeforge.backend.cuda;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where each tile's current values are, for the CUDA backend. A tile in native memory (a
 * TilePool's) may keep a device copy across ops:
 * <ul>
 *   <li>no entry: HOST_ONLY, the tile's memory holds its values;</li>
 *   <li>an entry with {@code hostCurrent}: BOTH, host memory and device buffer agree;</li>
 *   <li>an entry without: DEVICE_ONLY, only the device buffer holds the values.</li>
 * </ul>
 * Entries are keyed by memory, not by Tile object, so two tiles over the same memory (reshape
 * views, a tile borrowed again from the pool) share one. Live entries never overlap: a tile whose
 * memory overlaps an entry it does not match exactly first <em>settles</em> it (copies it to host
 * if only the device had its values, then forgets it). An entry whose memory was freed (its arena
 * closed) is dropped without a copy.
 *
 * <p>Heap tiles ({@code Tile.ofArray}: tests and small vectors such as AIM importances) are never
 * kept: their lifetime is the garbage collector's, so nothing would ever tell the backend to
 * forget them. The backend's ops copy them in and out on every op, as before residency.
 *
 * <p>Buffers of forgotten entries are retired, not returned at once, so an op that settles an
 * entry whose buffer it is still using cannot get that buffer back for another tile;
 * {@link #flush} returns them when the op ends. Not thread-safe: CudaBackend calls it under its lock.
 */
final class Residency {
    private static final class Entry {
        final MemorySegment mem;
        final DeviceBuffer buf;
        boolean hostCurrent;

        Entry(MemorySegment mem, DeviceBuffer buf, boolean hostCurrent) {
            this.mem = mem;
            this.buf = buf;
            this.hostCurrent = hostCurrent;
        }

        boolean overlaps(MemorySegment m) {
            return mem.address() < m.address() + m.byteSize() && m.address() < mem.address() + mem.byteSize();
        }
    }

    private final Device dev;
    private final DeviceBufferPool pool;
    private final Map<Long, Entry> byAddress = new LinkedHashMap<>();
    private final List<DeviceBuffer> retired = new ArrayList<>();

    Residency(Device dev, DeviceBufferPool pool) {
        this.dev = dev;
        this.pool = pool;
    }

    /** Whether the tile may keep a device copy (native memory); heap tiles never do. */
    static boolean kept(Tile t) { return t.data().isNative(); }

    /** The device buffer holding t's current values: the resident copy, else a new one uploaded now (then BOTH). */
    DeviceBuffer read(Tile t) {
        MemorySegment mem = t.data();
        Entry e = exact(mem);
        if (e != null) return e.buf;
        DeviceBuffer b = pool.borrow(mem.byteSize(), "tile " + t);
        dev.upload(mem, b);
        put(new Entry(mem, b, true));
        return b;
    }

    /** The device buffer an op writes t's new values into; t is DEVICE_ONLY from now on. Call {@link #read} first for an op that also reads t. */
    DeviceBuffer write(Tile t) {
        MemorySegment mem = t.data();
        Entry e = exact(mem);
        if (e == null) {
            e = new Entry(mem, pool.borrow(mem.byteSize(), "tile " + t), false);
            put(e);
        }
        e.hostCurrent = false;
        return e.buf;
    }

    /** t's values are now b's (a prefetched tensor taken over as is); t is DEVICE_ONLY. */
    void adopt(Tile t, DeviceBuffer b) {
        MemorySegment mem = t.data();
        Entry e = exact(mem);
        if (e != null) {
            if (e.mem.byteSize() != mem.byteSize() && !e.hostCurrent) dev.download(e.buf, e.mem);   // its tail stays current
            drop(e);
        }
        put(new Entry(mem, b, false));
    }

    /** Copies t's values into its memory if only the device had them; forgets the device copy unless {@code keep}. */
    void toHost(Tile t, boolean keep) {
        if (!kept(t)) return;
        Entry e = exact(t.data());
        if (e == null) return;
        if (!e.hostCurrent) {
            dev.download(e.buf, e.mem);
            e.hostCurrent = true;
        }
        if (!keep) drop(e);
    }

    /** t's values are dead: forgets its device copy without copying it (tiles overlapping t only in part are settled). */
    void forget(Tile t) {
        if (!kept(t)) return;
        Entry e = exact(t.data());
        if (e == null) return;
        // a view over the start of a larger entry: the entry's tail may still be live, so it goes to host first
        if (e.mem.byteSize() != t.data().byteSize() && !e.hostCurrent) dev.download(e.buf, e.mem);
        drop(e);
    }

    /** Before host code reads or writes mem (not a tile): every entry overlapping it is settled. */
    void settle(MemorySegment mem) {
        if (mem.isNative()) settle(mem, true);
    }

    /** Tiles with a device copy now. */
    int residentTiles() { return byAddress.size(); }

    /** Returns the buffers of forgotten entries to the pool (at the end of each op). */
    void flush() {
        for (DeviceBuffer b : retired) pool.release(b);
        retired.clear();
    }

    /** Forgets everything (the backend is closing; host values are not copied back). */
    void clear() {
        for (Entry e : byAddress.values()) retired.add(e.buf);
        byAddress.clear();
        flush();
    }

    /**
     * The live entry of mem's memory, or null; any other live entry overlapping mem is settled first.
     * A view over the start of an entry's memory (a chunk runner's short last chunk) shares the
     * entry: the buffer's prefix holds the view's values, and the entry's device copy is always
     * current, so an op writing the view leaves the rest of the entry as it was.
     */
    private Entry exact(MemorySegment mem) {
        Entry e = byAddress.get(mem.address());
        if (e != null && e.mem.byteSize() >= mem.byteSize() && e.mem.scope().isAlive() && e.mem.scope().equals(mem.scope())) return e;
        settle(mem, true);
        return null;
    }

    private void settle(MemorySegment mem, boolean copyBack) {
        for (Iterator<Entry> it = byAddress.values().iterator(); it.hasNext(); ) {
            Entry e = it.next();
            boolean alive = e.mem.scope().isAlive();
            if (alive && !e.overlaps(mem)) continue;
            if (alive && copyBack && !e.hostCurrent) dev.download(e.buf, e.mem);
            it.remove();
            retired.add(e.buf);
        }
    }

    private void put(Entry e) { byAddress.put(e.mem.address(), e); }

    private void drop(Entry e) {
        byAddress.remove(e.mem.address());
        retired.add(e.buf);
    }
}
