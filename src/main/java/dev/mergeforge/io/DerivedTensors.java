package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
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
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Input tensors computed from stored ones as a merge reads them: a LoRA adapter applied to its
 * base weight, an embedding's rows permuted to the merged vocabulary (docs/io.md, "LoRA
 * adapters"; docs/config.md, "Tokenizers and vocabularies"). A derived {@link TensorView} is
 * planned like a stored one, but its bytes live in anonymous memory that is only reserved
 * (MAP_NORESERVE) until {@link #prepare} computes them, just before the merge reads the tensor;
 * the merge's usual {@code MADV_DONTNEED} after the tensor returns that memory. So a derived input
 * is resident only while its tensor merges, like a stored input whose pages the merge maps in.
 *
 * <p>Lifetime: views are valid until {@link #close()}. A derived view must belong to one planned
 * tensor (callers make a fresh view per tensor): its memory is dropped after that tensor.
 */
public final class DerivedTensors implements AutoCloseable {
    /** Computes a derived tensor's bytes into {@code dst} (its dtype and shape), reading its sources row by row. */
    public interface Filler {
        void fill(MemorySegment dst);

        /** Derived views this one reads (prepared first, released after). */
        default List<TensorView> inputs() { return List.of(); }
    }

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

    /** A view of {@code dtype}{@code shape} whose bytes {@code filler} computes when the merge is about to read it. */
    public TensorView create(String name, DType dtype, Shape shape, String source, Filler filler) {
        long bytes = Math.multiplyExact(shape.numel(), (long) dtype.byteSize());
        TensorView v = new TensorView(name, dtype, shape, reserve(bytes), source);
        fillers.put(v, filler);
        return v;
    }

    public boolean isDerived(TensorView v) { return fillers.containsKey(v); }

    /** Computes the derived views among {@code views} (each once); stored views are left alone. */
    public void prepare(Collection<TensorView> views) {
        Set<TensorView> done = Collections.newSetFromMap(new IdentityHashMap<>());
        for (TensorView v : views) prepare(v, done);
    }

    private void prepare(TensorView v, Set<TensorView> done) {
        Filler f = fillers.get(v);
        if (f == null || !done.add(v)) return;
        for (TensorView in : f.inputs()) prepare(in, done);
        f.fill(v.data());
        for (TensorView in : f.inputs()) if (isDerived(in)) Madvise.dontNeed(in.data());
    }

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
        arena.close();
    }
}
