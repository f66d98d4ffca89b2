package dev.mergeforge.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The kernel's page cache of a file, through libc bound with FFM downcalls (no dependency):
 * {@code posix_fadvise(POSIX_FADV_DONTNEED)} drops a consumed range of a file from the cache
 * (docs/io.md, "Inputs larger than memory"), {@code sync_file_range} starts and awaits the
 * write-back of written pages so they can be dropped too, and {@code mincore} over a fresh mapping
 * counts the pages of a file the cache holds ({@link #residentBytes}, what `vmtouch` reports).
 *
 * <p>Hints only: on a platform without these calls, or when one fails, nothing happens and the
 * data is still read and written correctly. File descriptors opened here ({@link #open}) are plain
 * ints owned by the caller, who closes them with {@link #close(int)}.
 */
public final class PageCache {
    /** Linux x86-64 / aarch64 values. */
    private static final int O_RDONLY = 0, O_CLOEXEC = 0x80000, POSIX_FADV_DONTNEED = 4;
    private static final int SYNC_WAIT_BEFORE = 1, SYNC_WRITE = 2, SYNC_WAIT_AFTER = 4;
    /** The page size the calls round to. */
    public static final long PAGE_SIZE = 4096;
    static final long PAGE = PAGE_SIZE;
    private static final MethodHandle OPEN, CLOSE, FADVISE, SYNC_RANGE, MINCORE;

    static {
        MethodHandle open = null, close = null, fadvise = null, sync = null, mincore = null;
        try {
            if (System.getProperty("os.name", "").startsWith("Linux")) {
                Linker l = Linker.nativeLinker();
                SymbolLookup libc = l.defaultLookup();
                ValueLayout i = ValueLayout.JAVA_INT, j = ValueLayout.JAVA_LONG, a = ValueLayout.ADDRESS;
                open = libc.find("open").map(s -> l.downcallHandle(s, FunctionDescriptor.of(i, a, i, i), Linker.Option.firstVariadicArg(2))).orElse(null);
                close = libc.find("close").map(s -> l.downcallHandle(s, FunctionDescriptor.of(i, i))).orElse(null);
                fadvise = libc.find("posix_fadvise").map(s -> l.downcallHandle(s, FunctionDescriptor.of(i, i, j, j, i))).orElse(null);
                sync = libc.find("sync_file_range").map(s -> l.downcallHandle(s, FunctionDescriptor.of(i, i, j, j, i))).orElse(null);
                mincore = libc.find("mincore").map(s -> l.downcallHandle(s, FunctionDescriptor.of(i, a, j, a))).orElse(null);
            }
        } catch (Throwable t) {
            open = null;
        }
        OPEN = open == null || close == null ? null : open;
        CLOSE = close;
        FADVISE = fadvise;
        SYNC_RANGE = sync;
        MINCORE = mincore;
    }

    private PageCache() {}

    /** Whether ranges can be dropped from the cache here (Linux with posix_fadvise). */
    public static boolean canDrop() { return OPEN != null && FADVISE != null; }

    /** A read-only descriptor of {@code file} for {@link #dropRange}, or -1 where that is not possible. */
    public static int open(Path file) {
        if (!canDrop()) return -1;
        try (Arena a = Arena.ofConfined()) {
            return (int) OPEN.invokeExact(a.allocateFrom(file.toAbsolutePath().toString()), O_RDONLY | O_CLOEXEC, 0);
        } catch (Throwable t) {
            return -1;
        }
    }

    /** Closes a descriptor from {@link #open} (ignores -1). */
    public static void close(int fd) {
        if (fd < 0 || CLOSE == null) return;
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            // nothing was written through it
        }
    }

    /**
     * Drops the whole pages inside bytes [offset, offset + length) of the file from the page cache
     * (partial pages at either end stay: their other bytes may belong to a tensor still wanted).
     * Pages mapped by a process, or dirty, stay too; drop a mapping's pages from this process first
     * ({@link Madvise#dontNeed}). Returns whether the call was made and succeeded.
     */
    public static boolean dropRange(int fd, long offset, long length) {
        if (fd < 0 || FADVISE == null || length <= 0) return false;
        long a = (offset + PAGE - 1) & -PAGE, b = (offset + length) & -PAGE;
        if (b <= a) return true;
        try {
            return (int) FADVISE.invokeExact(fd, a, b - a, POSIX_FADV_DONTNEED) == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /**
     * Starts writing bytes [offset, offset + length) of the file back to disk and, with
     * {@code wait}, waits until they are written (so that {@link #dropRange} can drop them).
     */
    public static boolean writeBack(int fd, long offset, long length, boolean wait) {
        if (fd < 0 || SYNC_RANGE == null || length <= 0) return false;
        int flags = wait ? SYNC_WAIT_BEFORE | SYNC_WRITE | SYNC_WAIT_AFTER : SYNC_WRITE;
        try {
            return (int) SYNC_RANGE.invokeExact(fd, offset, length, flags) == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /**
     * Bytes of {@code file} the page cache holds now (whole pages; the last one counted whole), by
     * {@code mincore} over a fresh read-only mapping, which touches nothing; -1 where unavailable.
     * Walks the file in 1 GiB windows, so the residency vector stays small.
     */
    public static long residentBytes(Path file) {
        if (MINCORE == null) return -1;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long size = ch.size(), resident = 0, window = 1L << 30;
            MemorySegment vec = arena.allocate(window / PAGE);
            for (long at = 0; at < size; at += window) {
                long n = Math.min(window, size - at);
                try (Arena m = Arena.ofConfined()) {
                    MemorySegment map = ch.map(FileChannel.MapMode.READ_ONLY, at, n, m);
                    long pages = (n + PAGE - 1) / PAGE;
                    if ((int) MINCORE.invokeExact(map, n, vec) != 0) return -1;
                    for (long p = 0; p < pages; p++) if ((vec.get(ValueLayout.JAVA_BYTE, p) & 1) != 0) resident += PAGE;
                }
            }
            return Math.min(resident, (size + PAGE - 1) & -PAGE);
        } catch (IOException e) {
            return -1;
        } catch (Throwable t) {
            return -1;
        }
    }
}
