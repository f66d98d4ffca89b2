package dev.mergeforge.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Large working buffers (pooled tiles, writer blocks) as anonymous mappings advised
 * MADV_HUGEPAGE: where transparent huge pages are in "madvise" mode (a common default), their first
 * touch then costs one fault per 2 MiB instead of one per 4 KiB, and on a VM faults are costly.
 * The memory is zero,
 * like {@link Arena#allocate}'s, and is unmapped when {@code arena} closes. Falls back to
 * {@link Arena#allocate} off Linux, below 2 MiB, or when mmap fails.
 */
public final class LargePages {
    private static final long HUGE = 2L << 20;
    private static final int PROT_READ_WRITE = 0x3, MAP_PRIVATE_ANONYMOUS = 0x22, MADV_HUGEPAGE = 14;
    private static final MethodHandle MMAP, MUNMAP, MADVISE;

    static {
        MethodHandle mmap = null, munmap = null, madvise = null;
        try {
            Linker l = Linker.nativeLinker();
            var libc = l.defaultLookup();
            if (System.getProperty("os.name", "").startsWith("Linux")) {
                mmap = libc.find("mmap").map(a -> l.downcallHandle(a, FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG))).orElse(null);
                munmap = libc.find("munmap").map(a -> l.downcallHandle(a, FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG))).orElse(null);
                madvise = libc.find("madvise").map(a -> l.downcallHandle(a, FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT))).orElse(null);
            }
        } catch (Throwable t) {
            mmap = null;
        }
        MMAP = munmap == null || madvise == null ? null : mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
    }

    private LargePages() {}

    /** {@code bytes} of zeroed memory aligned to at least {@code align} (≤ 4096), freed with {@code arena}. */
    public static MemorySegment allocate(Arena arena, long bytes, long align) {
        if (MMAP == null || bytes < HUGE || align > 4096) return arena.allocate(bytes, align);
        try {
            MemorySegment p = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, bytes, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
            if (p.address() == -1L) return arena.allocate(bytes, align); // MAP_FAILED
            int ignored = (int) MADVISE.invokeExact(p, bytes, MADV_HUGEPAGE); // a hint: without huge pages the memory still works
            return p.reinterpret(bytes, arena, s -> unmap(s, bytes));
        } catch (Throwable t) {
            return arena.allocate(bytes, align);
        }
    }

    private static void unmap(MemorySegment s, long bytes) {
        try {
            int ignored = (int) MUNMAP.invokeExact(s, bytes);
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
    }
}
