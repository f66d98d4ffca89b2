package dev.mergeforge.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Owns the float32 working memory of a merge. Tiles are borrowed for one tensor and returned;
 * buffers are reused (best fit by capacity) so a merge allocates about as much as its largest
 * tensor needs, once. Closing the pool frees everything and refuses while tiles are out.
 *
 * <p>Thread-safe: the read-ahead thread borrows while the merge thread works.
 *
 * <p>A release listener (the backend's {@code released}) hears of every tile before its memory
 * goes back to the free list, so a backend that keeps its own copy of a tile (CUDA) forgets it
 * before the same memory can be borrowed again as another tile.
 */
public final class TilePool implements AutoCloseable {
    private static final long ALIGN = 64;

    /** Each buffer has its own arena so that a buffer dropped to stay under the limit is freed at once. */
    private final Map<MemorySegment, Arena> arenas = new IdentityHashMap<>();
    private final List<MemorySegment> free = new ArrayList<>();
    private final Map<MemorySegment, Boolean> out = new IdentityHashMap<>();
    private final long limitBytes;
    private final Consumer<Tile> onRelease;
    private long allocatedBytes;
    private long peakOutBytes;
    private long outBytes;
    private boolean closed;
    private final boolean anyLarger;
    private final MemoryLedger ledger;

    /** @param limitBytes the most memory the pool may hold; a borrow past it throws */
    public TilePool(long limitBytes) { this(limitBytes, t -> { }); }

    public TilePool() { this(Long.MAX_VALUE); }

    /**
     * @param limitBytes the most memory the pool may hold; a borrow past it throws
     * @param onRelease  told of each tile being released, before its memory can be borrowed again
     */
    public TilePool(long limitBytes, Consumer<Tile> onRelease) { this(limitBytes, onRelease, false); }

    /**
     * @param anyLarger reuse any free buffer at least as large as asked (best fit), not only one
     *                  at most about twice the size: for a few short-lived buffers whose largest
     *                  comes first (the merger's staged inputs), so fresh memory — costly to touch
     *                  the first time — is taken once
     */
    public TilePool(long limitBytes, Consumer<Tile> onRelease, boolean anyLarger) {
        this(limitBytes, onRelease, anyLarger, MemoryLedger.unlimited());
    }

    /**
     * @param ledger counts every buffer this pool takes and frees; before taking a fresh one the pool
     *               frees cached free buffers while the ledger has no room for it
     */
    public TilePool(long limitBytes, Consumer<Tile> onRelease, boolean anyLarger, MemoryLedger ledger) {
        this.ledger = ledger;
        this.limitBytes = limitBytes;
        this.onRelease = onRelease;
        this.anyLarger = anyLarger;
    }

    /** Borrows a tile of the given shape (contents undefined). */
    public Tile borrow(Shape shape) { return borrow(shape, anyLarger); }

    /**
     * Borrows a tile of the given shape (contents undefined), reusing any free buffer at least as
     * large as asked (best fit) when {@code anyLarger}, whatever this pool's own policy: for a set of
     * tiles borrowed and returned together, tensor after tensor (a chunked tensor's chunk tiles), so a
     * smaller tensor after a larger one takes the larger one's buffers — already touched — instead of
     * fresh memory, and no buffer has to be dropped to make room for its smaller ones.
     */
    public synchronized Tile borrow(Shape shape, boolean anyLarger) {
        if (closed) throw new IllegalStateException("tile pool is closed");
        long need = Math.max(4, Math.multiplyExact(shape.numel(), 4L));
        MemorySegment best = null;
        for (MemorySegment s : free) {
            if (s.byteSize() >= need && (best == null || s.byteSize() < best.byteSize())) best = s;
        }
        if (best != null && (anyLarger || best.byteSize() <= need * 2 + (1 << 20))) {
            free.remove(best);
        } else {
            // A fresh buffer: drop free ones if that keeps us under the limit.
            while ((allocatedBytes + need > limitBytes || ledger.room() < need) && !free.isEmpty()) {
                MemorySegment drop = free.removeLast();
                arenas.remove(drop).close();
                allocatedBytes -= drop.byteSize();
                ledger.credit(drop.byteSize());
            }
            if (allocatedBytes + need > limitBytes) {
                throw new IllegalStateException("working memory limit of " + limitBytes + " bytes reached borrowing "
                        + need + " bytes for a tensor of shape " + shape + "; raise --max-memory");
            }
            Arena a = Arena.ofShared();
            best = LargePages.allocate(a, need, ALIGN);
            arenas.put(best, a);
            allocatedBytes += need;
            ledger.charge(need, "a tile of shape " + shape);
        }
        out.put(best, Boolean.TRUE);
        outBytes += best.byteSize();
        peakOutBytes = Math.max(peakOutBytes, outBytes);
        return new Tile(best, shape);
    }

    /** Returns a borrowed tile to the pool (the listener hears of it first, outside the pool's lock). */
    public void release(Tile t) {
        onRelease.accept(t);
        free(t);
    }

    private synchronized void free(Tile t) {
        MemorySegment seg = null;
        for (MemorySegment s : out.keySet()) {
            if (s.address() == t.data().address()) { seg = s; break; }
        }
        if (seg == null) throw new IllegalStateException("tile " + t + " was not borrowed from this pool");
        out.remove(seg);
        outBytes -= seg.byteSize();
        free.add(seg);
    }

    public void releaseAll(List<Tile> tiles) {
        for (Tile t : tiles) if (t != null) release(t);
    }

    /** Bytes this pool holds now (a merge's working memory). */
    public synchronized long allocatedBytes() { return allocatedBytes; }

    /** Most bytes borrowed at one time. */
    public synchronized long peakBorrowedBytes() { return peakOutBytes; }

    @Override
    public synchronized void close() {
        if (closed) return;
        if (!out.isEmpty()) {
            throw new IllegalStateException("tile pool closed with " + out.size() + " tiles still borrowed");
        }
        closed = true;
        for (Arena a : arenas.values()) a.close();
        ledger.credit(allocatedBytes);
        allocatedBytes = 0;
        arenas.clear();
        free.clear();
    }
}
