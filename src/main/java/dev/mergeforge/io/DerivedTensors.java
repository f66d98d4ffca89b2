package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.MemoryLedger;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Input tensors computed from stored ones as a merge reads them: a LoRA adapter applied to its
 * base weight, an embedding's rows permuted to the merged vocabulary (docs/io.md, "LoRA
 * adapters"; docs/config.md, "Tokenizers and vocabularies"). A derived {@link TensorView} is
 * planned like a stored one, but its bytes live in anonymous memory that is only reserved
 * (MAP_NORESERVE) and computed on demand, range by range: a filler computes any elements
 * [from, from + n) from the rows of its sources (a permuted row gathered from its source rows, an
 * adapted row as W_row + s·(B_row·A)), so a merge that reads its inputs in chunks never holds a
 * derived tensor whole. Three ways to read one: {@link #read} computes a range into a buffer of the
 * caller's; {@link #window} makes a range readable through the view's own memory for code that reads
 * stored views (the chunk loads, the fused pass), dropping the previous window of that view, charged
 * to the merge's ledger; {@link #prepare} computes the whole view, for the whole-tensor paths. The
 * merge's {@code MADV_DONTNEED} after a tensor, with {@link #release}, returns the memory.
 *
 * <p>Lifetime: views are valid until {@link #close()}. A derived view must belong to one planned
 * tensor (callers make a fresh view per tensor): its memory is dropped after that tensor.
 */
public final class DerivedTensors implements AutoCloseable {
    /** Computes elements [from, from + n) of a derived tensor into {@code dst} (n elements of its dtype). */
    @FunctionalInterface
    public interface Filler {
        void fill(long from, long n, MemorySegment dst);
    }

    /** The range of a view readable through its memory, and the bytes charged for it. */
    private record Window(long from, long n, long charged, MemoryLedger ledger) {}

    private static final int PROT_RW = 0x3, MAP_PRIVATE_ANON_NORESERVE = 0x22 | 0x4000;
    private static final MethodHandle MMAP, MUNMAP;

    static {
        MethodHandle mmap = null, munmap = null;
        try {
            Linker l = Linker.nativeLinker();
            var libc = l.defaultLookup();
            mmap = l.downcallHandle(libc.find("mmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
            munmap = l.downcallHandle(libc.find("munmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        } catch (RuntimeException | LinkageError e) {
            // no mmap: reservations fall back to ordinary (committed) memory
        }
        MMAP = mmap;
        MUNMAP = munmap;
    }

    private final Arena arena = Arena.ofShared();
    private final Map<TensorView, Filler> fillers = Collections.synchronizedMap(new IdentityHashMap<>());
    private final Map<TensorView, Window> windows = Collections.synchronizedMap(new IdentityHashMap<>());

    /** A view of {@code dtype}{@code shape} whose bytes {@code filler} computes when the merge reads them. */
    public TensorView create(String name, DType dtype, Shape shape, String source, Filler filler) {
        long bytes = Math.multiplyExact(shape.numel(), (long) dtype.byteSize());
        TensorView v = new TensorView(name, dtype, shape, reserve(bytes), source);
        fillers.put(v, filler);
        return v;
    }

    public boolean isDerived(TensorView v) { return fillers.containsKey(v); }

    /**
     * Elements [from, from + n) of {@code v} into {@code dst} (n elements of its dtype): computed for a
     * derived view, copied for a stored one. What fillers read their sources with.
     */
    public void read(TensorView v, long from, long n, MemorySegment dst) {
        long es = v.dtype().byteSize();
        if (from < 0 || n < 0 || from + n > v.numel() || dst.byteSize() < n * es) {
            throw new IllegalArgumentException("read of " + v.name() + " [" + from + ", " + (from + n) + ") of " + v.numel() + " into " + dst.byteSize() + " bytes");
        }
        Filler f = fillers.get(v);
        if (f == null) {
            MemorySegment src = v.data().asSlice(from * es, n * es);
            MemorySegment.copy(src, 0, dst, 0, n * es);
            // a stored source's pages leave this process behind the reader (they stay in the page cache), as a chunk load's do,
            // with those the kernel mapped around them
            if (src.isMapped()) Madvise.dontNeedAround(v.data(), from * es, n * es);
        } else if (n > 0) {
            f.fill(from, n, dst.asSlice(0, n * es));
        }
    }

    /** Computes the derived views among {@code views} whole (each once), for a whole-tensor path; stored views are left alone. */
    public void prepare(Collection<TensorView> views) {
        Set<TensorView> done = Collections.newSetFromMap(new IdentityHashMap<>());
        for (TensorView v : views) {
            Filler f = fillers.get(v);
            if (f == null || !done.add(v)) continue;
            Window w = windows.remove(v);
            if (w != null) w.ledger().credit(w.charged());
            f.fill(0, v.numel(), v.data());
        }
    }

    /**
     * Makes elements [from, from + n) of {@code v} readable through {@code v.data()} (no-op for a
     * stored view, or when the view's current window holds them): the view's previous window is
     * dropped (its pages not shared with the new one returned, its bytes credited) and the range is
     * computed and charged to {@code ledger}. One window per view: a reader reads a view's chunks in
     * turn, on one thread.
     */
    public void window(TensorView v, long from, long n, MemoryLedger ledger) {
        Filler f = fillers.get(v);
        if (f == null || n == 0) return;
        long es = v.dtype().byteSize();
        Window w = windows.get(v);
        if (w != null && from >= w.from() && from + n <= w.from() + w.n()) return;
        // pages the new window touches, rounded out: kept when dropping the old one
        long lo = Math.floorDiv(from * es, PAGE) * PAGE, hi = Math.min(v.data().byteSize(), ceilPage((from + n) * es));
        if (w != null) drop(v, w, lo, hi);
        long charge = hi - lo;
        ledger.charge(charge, "a window of computed input " + v.name());
        windows.put(v, new Window(from, n, charge, ledger));
        f.fill(from, n, v.data().asSlice(from * es, n * es));
    }

    /** Drops the window of each derived view among {@code views} (after their tensor): memory returned, bytes credited. */
    public void release(Collection<TensorView> views) {
        for (TensorView v : views) {
            Window w = windows.remove(v);
            if (w != null) drop(v, w, 0, 0);
        }
    }

    /** Returns the pages of window {@code w} of {@code v} outside [keepLo, keepHi) bytes, and credits its charge. */
    private static void drop(TensorView v, Window w, long keepLo, long keepHi) {
        long es = v.dtype().byteSize(), size = v.data().byteSize();
        long lo = Math.floorDiv(w.from() * es, PAGE) * PAGE, hi = Math.min(size, ceilPage((w.from() + w.n()) * es));
        // the part before the kept pages, then the part after them
        dontNeed(v, lo, Math.min(hi, keepHi > keepLo ? keepLo : hi));
        if (keepHi > keepLo) dontNeed(v, Math.max(lo, keepHi), hi);
        w.ledger().credit(w.charged());
    }

    private static void dontNeed(TensorView v, long from, long to) {
        if (to > from) Madvise.dontNeed(v.data().asSlice(from, to - from));
    }

    private static final long PAGE = 4096;

    private static long ceilPage(long b) { return Math.floorDiv(b + PAGE - 1, PAGE) * PAGE; }

    private MemorySegment reserve(long bytes) {
        if (bytes == 0) return MemorySegment.NULL.reinterpret(0);
        if (MMAP != null) {
            try {
                MemorySegment p = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, bytes, PROT_RW, MAP_PRIVATE_ANON_NORESERVE, -1, 0L);
                if (p.address() != -1L) return p.reinterpret(bytes, arena, s -> unmap(s, bytes));
            } catch (Throwable t) {
                // fall through to committed memory
            }
        }
        return arena.allocate(bytes, 64);
    }

    private static void unmap(MemorySegment s, long bytes) {
        try {
            int ignored = (int) MUNMAP.invokeExact(s, bytes);
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
    }

    /** Frees every derived view's memory; the views are invalid afterwards. */
    @Override public void close() {
        fillers.clear();
        windows.clear();
        arena.close();
    }
}
