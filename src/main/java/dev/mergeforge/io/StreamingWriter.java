package dev.mergeforge.io;

import dev.mergeforge.tensor.LargePages;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes one safetensors file strictly front to back: the header, then each planned tensor in
 * plan order. Bytes are gathered into large aligned blocks that a background thread writes while
 * the caller computes the next tensor, with direct I/O where the file system allows it (on many
 * machines the page cache accepts writes at a fraction of the disk's speed); elsewhere with plain
 * writes. The file is cut to its exact size on close.
 *
 * <p>Lifetime: owns its blocks (an arena), its channel and its writer thread until {@link #close()}.
 */
public final class StreamingWriter implements AutoCloseable {
    private static final long ALIGN = 4096;
    public static final long BLOCK = 32L << 20;

    private final Path path;
    private final List<SafetensorsWriter.Entry> entries;
    private final FileChannel channel;
    private final boolean direct;
    private final Arena arena = Arena.ofShared();
    private final BlockingQueue<MemorySegment> free = new ArrayBlockingQueue<>(2);
    private final ExecutorService io = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "mergeforge-writer");
        t.setDaemon(true);
        return t;
    });
    private final List<Future<?>> pending = new ArrayList<>();
    private final long total;
    private final long blockSize;
    private MemorySegment block;
    private long blockFill;
    private long fileOffset; // file offset of the current block's first byte
    private int next;        // index of the next entry to write
    /** Without direct I/O: a descriptor to drop written pages from the page cache with, or -1 (docs/io.md, "Inputs larger than memory"). */
    private final int dropFd;
    /** The block written before the last one (writer thread only): its write-back is awaited, then its pages dropped. */
    private long prevAt = -1, prevLen;

    /** Blocks of 32 MiB, or {@code -Dmergeforge.writer.block=BYTES} (a multiple of 4096; tests cut tensors at block edges with small ones). */
    public StreamingWriter(Path path, List<SafetensorsWriter.Entry> entries, Map<String, String> metadata) {
        this(path, entries, metadata, Long.getLong("mergeforge.writer.block", BLOCK), true, DropMode.configured() != DropMode.NEVER);
    }

    /** With a block size (a multiple of 4096) and whether to try direct I/O: for tests. */
    StreamingWriter(Path path, List<SafetensorsWriter.Entry> entries, Map<String, String> metadata, long blockSize, boolean tryDirect) {
        this(path, entries, metadata, blockSize, tryDirect, true);
    }

    /**
     * @param dropWritten without direct I/O, drop each block's pages from the page cache once they
     *                    are on disk (one block behind the writer), so that writing a model larger
     *                    than memory does not evict the inputs being read
     */
    StreamingWriter(Path path, List<SafetensorsWriter.Entry> entries, Map<String, String> metadata, long blockSize, boolean tryDirect,
                    boolean dropWritten) {
        if (blockSize <= 0 || blockSize % ALIGN != 0) throw new IllegalArgumentException("block size must be a positive multiple of " + ALIGN);
        this.path = path;
        this.blockSize = blockSize;
        this.entries = List.copyOf(entries);
        byte[] header = SafetensorsWriter.headerBytes(entries, metadata);
        long t = 8L + header.length;
        for (SafetensorsWriter.Entry e : entries) t = Math.addExact(t, e.byteSize());
        this.total = t;
        FileChannel ch;
        boolean d;
        try {
            if (!tryDirect) throw new UnsupportedOperationException("direct I/O not asked for");
            ch = open(path, true);
            d = true;
        } catch (IOException | UnsupportedOperationException e) {
            ch = null;
            d = false;
        }
        try {
            if (ch == null) ch = open(path, false);
        } catch (IOException e) {
            arena.close();
            io.shutdown();
            throw new UncheckedIOException("cannot create " + path + ": " + e.getMessage() + "; check that the folder is writable", e);
        }
        this.channel = ch;
        this.direct = d;
        this.dropFd = !d && dropWritten ? PageCache.open(path) : -1;
        for (int i = 0; i < 2; i++) free.add(LargePages.allocate(arena, blockSize, ALIGN));
        block = take();
        MemorySegment head = MemorySegment.ofArray(new byte[8 + header.length]);
        head.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, header.length);
        MemorySegment.copy(MemorySegment.ofArray(header), 0, head, 8, header.length);
        append(head);
    }

    private static FileChannel open(Path p, boolean direct) throws IOException {
        List<OpenOption> opts = new ArrayList<>(List.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
        if (direct) opts.add(com.sun.nio.file.ExtendedOpenOption.DIRECT);
        return FileChannel.open(p, opts.toArray(OpenOption[]::new));
    }

    public Path path() { return path; }

    /** Bytes of block memory this writer holds (two blocks). */
    public long bufferBytes() { return 2 * blockSize; }

    /** True when the file is written with direct I/O. */
    public boolean direct() { return direct; }

    /** Writes the named tensor's bytes; tensors must come in plan order. */
    public void write(String name, MemorySegment bytes) {
        expect(name, bytes.byteSize());
        append(bytes);
        next++;
    }

    /** Computes one piece of a tensor's bytes in place: see {@link #fill}. */
    @FunctionalInterface
    public interface Filler {
        /**
         * Writes the tensor's bytes [offset, offset + dst.byteSize()) into {@code dst}; returns false
         * to decline (only allowed for the first piece, before anything was written).
         */
        boolean fill(long offset, MemorySegment dst);
    }

    /**
     * Lets the caller compute the named tensor's bytes straight into this writer's blocks, saving
     * a staging buffer and a copy: {@code f} is called for each contiguous piece, in order, cut
     * only at block boundaries, so every piece is a whole number of {@code elementBytes}-byte
     * elements. Returns false, having written nothing, when the tensor does not start on an element
     * boundary within the block (mixed dtypes) or when {@code f} declines the first piece; the
     * caller then stages the bytes and calls {@link #write}.
     */
    public boolean fill(String name, long elementBytes, Filler f) { return fill(name, elementBytes, Long.MAX_VALUE, f); }

    /**
     * As {@link #fill(String, long, Filler)}, with pieces also cut at every multiple of
     * {@code cutBytes} of the tensor's bytes (a multiple of {@code elementBytes}), so that a caller
     * computing the tensor in chunks gets no piece spanning two ({@code Long.MAX_VALUE}: no cut).
     */
    public boolean fill(String name, long elementBytes, long cutBytes, Filler f) {
        long n = expect(name, -1);
        if (elementBytes <= 0 || n % elementBytes != 0 || blockFill % elementBytes != 0 || blockSize % elementBytes != 0) return false;
        if (cutBytes != Long.MAX_VALUE && (cutBytes <= 0 || cutBytes % elementBytes != 0)) throw new IllegalArgumentException("cut of " + cutBytes + " bytes for " + elementBytes + "-byte elements");
        long done = 0;
        while (done < n) {
            long toCut = cutBytes - done % cutBytes;
            long k = Math.min(Math.min(n - done, blockSize - blockFill), toCut);
            if (!f.fill(done, block.asSlice(blockFill, k))) {
                if (done == 0) return false;
                throw new IllegalStateException("tensor '" + name + "': the filler declined a piece after the first");
            }
            blockFill += k;
            done += k;
            if (blockFill == blockSize) flush(blockSize);
        }
        next++;
        return true;
    }

    /** Checks that {@code name} is the next planned tensor (and, unless -1, its size); returns its size. */
    private long expect(String name, long bytes) {
        if (next >= entries.size() || !entries.get(next).name().equals(name)) {
            throw new IllegalStateException("tensor '" + name + "' written out of order in " + path + " (expected "
                    + (next < entries.size() ? entries.get(next).name() : "no more tensors") + ")");
        }
        long size = entries.get(next).byteSize();
        if (bytes >= 0 && bytes != size) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + size + " bytes, got " + bytes);
        }
        return size;
    }

    private void append(MemorySegment src) {
        long done = 0, n = src.byteSize();
        while (done < n) {
            long k = Math.min(n - done, blockSize - blockFill);
            MemorySegment.copy(src, done, block, blockFill, k);
            blockFill += k;
            done += k;
            if (blockFill == blockSize) flush(blockSize);
        }
    }

    /** Hands the current block to the writer thread (len bytes, a multiple of the alignment) and takes a free one. */
    private void flush(long len) {
        MemorySegment b = block;
        long at = fileOffset;
        pending.removeIf(Future::isDone);
        pending.add(io.submit(() -> {
            try {
                java.nio.ByteBuffer buf = b.asSlice(0, len).asByteBuffer();
                while (buf.hasRemaining()) channel.write(buf, at + buf.position());
                dropBehind(at, len);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage() + "; check free disk space", e);
            } finally {
                free.add(b);
            }
            return null;
        }));
        fileOffset += len;
        blockFill = 0;
        block = take();
        rethrow();
    }

    /**
     * Writer thread, after block [at, at + len) was written: starts its write-back, waits for the
     * previous block's and drops that one's pages (dirty pages cannot be dropped, hence one behind).
     */
    private void dropBehind(long at, long len) {
        if (dropFd < 0) return;
        PageCache.writeBack(dropFd, at, len, false);
        if (prevAt >= 0) dropWritten(prevAt, prevLen);
        prevAt = at;
        prevLen = len;
    }

    private void dropWritten(long at, long len) {
        PageCache.writeBack(dropFd, at, len, true);
        PageCache.dropRange(dropFd, at, len);
    }

    private MemorySegment take() {
        try {
            return free.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UncheckedIOException(new java.io.InterruptedIOException("interrupted writing " + path));
        }
    }

    /** Surfaces the first failure of a finished block write. */
    private void rethrow() {
        for (Future<?> f : pending) if (f.isDone()) await(f);
    }

    /** Waits for one block write; its failure is thrown as is. */
    private void await(Future<?> f) {
        try {
            f.get();
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new UncheckedIOException(new IOException(e.getCause()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UncheckedIOException(new java.io.InterruptedIOException("interrupted writing " + path));
        }
    }

    /** Writes the tail, waits for the writer thread and cuts the file to its exact size. */
    public void finish() {
        if (next != entries.size()) {
            throw new IllegalStateException(path + ": " + (entries.size() - next) + " planned tensors were never written");
        }
        long tail = blockFill;
        if (tail > 0) {
            long padded = direct ? (tail + ALIGN - 1) / ALIGN * ALIGN : tail;
            if (padded > tail) block.asSlice(tail, padded - tail).fill((byte) 0);
            flush(padded);
        }
        for (Future<?> f : pending) await(f);
        pending.clear();
        if (dropFd >= 0 && prevAt >= 0) {
            dropWritten(prevAt, prevLen);
            prevAt = -1;
        }
        try {
            channel.truncate(total);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot finish " + path + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        io.shutdown();
        try {
            io.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES);
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + path + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            PageCache.close(dropFd);
            arena.close();
        }
    }
}
