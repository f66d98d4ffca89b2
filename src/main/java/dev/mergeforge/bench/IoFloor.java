package dev.mergeforge.bench;

import dev.mergeforge.io.Madvise;
import dev.mergeforge.tensor.LargePages;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A second floor for the end-to-end table, measured in the same run: what one merge cannot avoid on
 * this machine. The copy floor assumes every byte moves at hot memory-copy speed, but a merge
 * reads each input byte exactly once, from a fresh mapping of the page cache, and must get its
 * output onto the disk. So: the input files read once, the faster of two ways, both on all cores
 * (a first pass over fresh mappings, every 8-byte word; positional reads into a reused buffer), and
 * the output size written with direct I/O from an aligned buffer (buffered writes where the file
 * system refuses direct I/O), as the merger writes.
 *
 * @param mappedReadBytesPerSecond read-once speed of the page-cache inputs through fresh mappings
 * @param preadBytesPerSecond      read-once speed of the same inputs with positional reads
 * @param writeBytesPerSecond      sequential write speed of the output folder's disk
 */
public record IoFloor(double mappedReadBytesPerSecond, double preadBytesPerSecond, double writeBytesPerSecond) {

    /** The faster way to read the inputs once: what the floor charges for reading. */
    public double readBytesPerSecond() { return Math.max(mappedReadBytesPerSecond, preadBytesPerSecond); }

    /** Seconds one merge needs at least: reading and writing overlap, so the slower of the two. */
    public double seconds(long bytesIn, long bytesOut) {
        return Math.max(bytesIn / readBytesPerSecond(), bytesOut / writeBytesPerSecond);
    }

    /** Reads {@code files} once through fresh mappings and writes {@code writeBytes} into a scratch file in {@code dir}. */
    public static IoFloor measure(List<Path> files, long writeBytes, Path dir) {
        return new IoFloor(readOnce(files), preadOnce(files), writeOnce(writeBytes, dir));
    }

    /** Positional reads of every file into one reused buffer per thread, each file split between the threads. */
    static double preadOnce(List<Path> files) {
        try {
            long total = 0;
            List<Callable<Long>> jobs = new ArrayList<>();
            for (Path p : files) {
                long size = Files.size(p);
                total += size;
                split(size, (lo, hi) -> jobs.add(() -> readRange(p, lo, hi)));
            }
            return total / timed(jobs);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + files + ": " + e.getMessage(), e);
        }
    }

    private static long readRange(Path p, long lo, long hi) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(16 << 20);
        long n = 0;
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            for (long at = lo; at < hi; ) {
                buf.clear().limit((int) Math.min(buf.capacity(), hi - at));
                int r = ch.read(buf, at);
                if (r <= 0) break;
                at += r;
                n += r;
            }
        }
        return n;
    }

    /** A first pass over fresh mappings of every file: every 8-byte word summed, each file split between the threads. */
    static double readOnce(List<Path> files) {
        try (Arena arena = Arena.ofShared()) {
            long total = 0;
            List<Callable<Long>> jobs = new ArrayList<>();
            for (Path p : files) {
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                    long size = ch.size() & ~7L;
                    if (size == 0) continue;
                    MemorySegment m = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
                    total += size;
                    split(size / 8, (lo, hi) -> jobs.add(() -> sum(m, lo, hi)));
                }
            }
            return total / timed(jobs);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + files + ": " + e.getMessage(), e);
        }
    }

    /** Cuts [0, n) into one range per core. */
    private static void split(long n, java.util.function.BiConsumer<Long, Long> range) {
        int threads = Runtime.getRuntime().availableProcessors();
        long per = (n + threads - 1) / threads;
        for (int t = 0; t < threads; t++) {
            long lo = t * per, hi = Math.min(n, lo + per);
            if (lo < hi) range.accept(lo, hi);
        }
    }

    /** Runs the jobs on one thread per core; returns the seconds they took together. */
    private static double timed(List<Callable<Long>> jobs) {
        ExecutorService pool = Executors.newFixedThreadPool(Runtime.getRuntime().availableProcessors());
        try {
            long t0 = System.nanoTime(), check = 0;
            for (Future<Long> f : pool.invokeAll(jobs)) check += f.get();
            double secs = (System.nanoTime() - t0) / 1e9;
            if (check == 42) System.err.print(""); // keep the sums alive
            return secs;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof UncheckedIOException u ? u : new IllegalStateException(e.getCause());
        } finally {
            pool.shutdownNow();
        }
    }

    /** Words per window after which the pages read are dropped from this process (64 MiB), as a merge drops them behind its chunks. */
    private static final long WINDOW = 8L << 20;

    private static long sum(MemorySegment m, long lo, long hi) {
        long s = 0;
        for (long w = lo; w < hi; w += WINDOW) {
            long end = Math.min(hi, w + WINDOW);
            for (long i = w; i < end; i++) s += m.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
            // inputs larger than memory: without this the mappings of every file stay resident (17 GB on the 70b slice)
            Madvise.dontNeed(m.asSlice(w * 8, (end - w) * 8));
        }
        return s;
    }

    static double writeOnce(long bytes, Path dir) {
        long block = 32L << 20;
        Path f = dir.resolve(".mergeforge-io-floor.tmp");
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buf = LargePages.allocate(arena, block, 4096);
            buf.fill((byte) 1);
            long rounded = (bytes + 4095) / 4096 * 4096;
            FileChannel ch;
            try {
                ch = open(f, true);
            } catch (IOException | UnsupportedOperationException e) {
                ch = open(f, false);
            }
            long t0 = System.nanoTime();
            try (FileChannel c = ch) {
                for (long at = 0; at < rounded; ) {
                    ByteBuffer bb = buf.asSlice(0, Math.min(block, rounded - at)).asByteBuffer();
                    while (bb.hasRemaining()) at += c.write(bb, at);
                }
            }
            return rounded / ((System.nanoTime() - t0) / 1e9);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write a scratch file in " + dir + ": " + e.getMessage(), e);
        } finally {
            try {
                Files.deleteIfExists(f);
            } catch (IOException ignored) {
                // a scratch file left behind in the bench folder
            }
        }
    }

    private static FileChannel open(Path p, boolean direct) throws IOException {
        List<OpenOption> o = new ArrayList<>(List.of(StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE));
        if (direct) o.add(com.sun.nio.file.ExtendedOpenOption.DIRECT);
        return FileChannel.open(p, o.toArray(OpenOption[]::new));
    }
}
