package dev.mergeforge.io;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Page-cache hints for mapped files through libc's {@code madvise}: WILLNEED starts the kernel's
 * read-ahead of the next tensor; DONTNEED drops a finished tensor's pages from this process so
 * that resident memory stays at a few tensors, not the whole model. Hints only: failures and
 * platforms without madvise are ignored (the data is still read correctly).
 */
public final class Madvise {
    private static final int MADV_SEQUENTIAL = 2, MADV_WILLNEED = 3, MADV_DONTNEED = 4, MADV_POPULATE_READ = 22;
    private static final long PAGE = 4096;
    private static final MethodHandle MADVISE = lookup();

    private Madvise() {}

    private static MethodHandle lookup() {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("madvise").map(addr -> linker.downcallHandle(addr,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT)))
                    .orElse(null);
        } catch (Throwable t) {
            return null;
        }
    }

    /**
     * Tells the kernel these pages are read front to back: a page fault reads ahead of it only,
     * instead of around it (on a disk with 8 MiB of read-ahead, reading around a fault re-reads
     * megabytes a reader dropping pages behind it has just dropped).
     */
    public static void sequential(MemorySegment s) { advise(s, MADV_SEQUENTIAL, false); }

    /** Asks the kernel to start reading these pages in. */
    public static void willNeed(MemorySegment s) { advise(s, MADV_WILLNEED, false); }

    /**
     * Maps every page of {@code s} into this process in one call (Linux 5.14+ MADV_POPULATE_READ),
     * reading from disk what the page cache lacks. Far cheaper than touching each page: on a VM a
     * page fault is costly. Returns false when the kernel cannot do it (older
     * kernels, not a mapping); then the caller touches the pages itself.
     */
    public static boolean populate(MemorySegment s) { return advise(s, MADV_POPULATE_READ, false) == 0; }

    /**
     * Drops the pages lying entirely inside {@code s} from this process (file-backed, read-only
     * mappings only: the data is re-read from the page cache on the next touch).
     */
    public static void dontNeed(MemorySegment s) { advise(s, MADV_DONTNEED, true); }

    /**
     * Drops every page {@code s} touches from this process, the pages it shares with its neighbours
     * too (file-backed, read-only mappings only: a neighbour's reader re-reads its page from the page
     * cache). For readers that gather rows whose edges share pages: {@link #dontNeed} would leave one
     * page per row behind.
     */
    public static void dontNeedTouched(MemorySegment s) { advise(s, MADV_DONTNEED, false); }

    /** The kernel's fault-around (Linux's default): a read fault maps the aligned 64 KiB of pages around the page it needs. */
    public static final long FAULT_AROUND = 64 << 10;

    /**
     * Drops the pages of bytes [from, from + length) of {@code whole} from this process, and those
     * within {@link #FAULT_AROUND} on either side (inside {@code whole}): a reader of ranges in turn
     * faults in the aligned block around each, pages of ranges it read and dropped before among them,
     * which dropping only its own range leaves mapped (a whole tensor's worth, read row by row).
     */
    public static void dontNeedAround(MemorySegment whole, long from, long length) {
        long lo = Math.max(0, from - FAULT_AROUND), hi = Math.min(whole.byteSize(), from + length + FAULT_AROUND);
        if (hi > lo) dontNeedTouched(whole.asSlice(lo, hi - lo));
    }

    private static int advise(MemorySegment s, int advice, boolean inner) {
        if (MADVISE == null || s.byteSize() == 0 || !s.isNative()) return -1;
        long start = s.address(), end = start + s.byteSize();
        long a = inner ? (start + PAGE - 1) & -PAGE : start & -PAGE;
        long b = inner ? end & -PAGE : (end + PAGE - 1) & -PAGE;
        if (b <= a) return 0;
        try {
            return (int) MADVISE.invokeExact(MemorySegment.ofAddress(a), b - a, advice);
        } catch (Throwable ignored) {
            return -1; // a hint: nothing to do
        }
    }
}
