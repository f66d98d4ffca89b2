package dev.mergeforge.io;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes one safetensors file whose tensors are all known up front. The header (and so every
 * tensor's offset) is fixed before any data and the file is sized at once; each tensor then goes
 * straight to its place, by positional writes ({@link #write}) or through a mapping of the file
 * ({@link #slot}): a streaming merge never buffers a whole shard.
 *
 * <p>Lifetime: the channel and any mapping live until {@link #close()}.
 */
public final class SafetensorsWriter implements AutoCloseable {
    /** One tensor of the file, in the order it is laid out. */
    public record Entry(String name, DType dtype, Shape shape) {
        public long byteSize() { return Math.multiplyExact(shape.numel(), (long) dtype.byteSize()); }
    }

    private final Path path;
    private final Arena arena = Arena.ofShared();
    private final FileChannel channel;
    private final Map<String, long[]> extents = new LinkedHashMap<>();
    private final long total;
    private MemorySegment mapped;

    public SafetensorsWriter(Path path, List<Entry> entries, Map<String, String> metadata) {
        this.path = path;
        byte[] header = headerBytes(entries, metadata);
        long dataStart = 8 + header.length;
        long t = dataStart;
        for (Entry e : entries) {
            if (extents.put(e.name(), new long[] {t, e.byteSize()}) != null) {
                throw new IllegalArgumentException("tensor '" + e.name() + "' planned twice in " + path);
            }
            t = Math.addExact(t, e.byteSize());
        }
        this.total = t;
        try {
            channel = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE);
            java.nio.ByteBuffer head = java.nio.ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(header.length).put(header).flip();
            while (head.hasRemaining()) channel.write(head, head.position());
            // size the file now (sparse): every tensor then has its place
            if (total > dataStart) channel.write(java.nio.ByteBuffer.allocate(1), total - 1);
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot create " + path + ": " + e.getMessage(), e);
        }
    }

    /** Size in bytes of the file these entries make. */
    public static long fileSize(List<Entry> entries, Map<String, String> metadata) {
        long total = 8 + headerBytes(entries, metadata).length;
        for (Entry e : entries) total += e.byteSize();
        return total;
    }

    /** The header JSON, padded with spaces to a multiple of 8 bytes so the data block is aligned. */
    static byte[] headerBytes(List<Entry> entries, Map<String, String> metadata) {
        ObjectNode root = SafetensorsFile.JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode m = root.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long off = 0;
        for (Entry e : entries) {
            if (e.name().equals("__metadata__")) throw new IllegalArgumentException("tensor name __metadata__ is reserved");
            if (root.has(e.name())) throw new IllegalArgumentException("tensor '" + e.name() + "' is planned twice in one file");
            ObjectNode t = root.putObject(e.name());
            t.put("dtype", e.dtype().safetensorsName());
            ArrayNode shape = t.putArray("shape");
            for (long d : e.shape().dims()) shape.add(d);
            ArrayNode offs = t.putArray("data_offsets");
            offs.add(off);
            off += e.byteSize();
            offs.add(off);
        }
        byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) & ~7;
        byte[] out = new byte[padded];
        System.arraycopy(json, 0, out, 0, json.length);
        for (int i = json.length; i < padded; i++) out[i] = ' ';
        return out;
    }

    public Path path() { return path; }

    /**
     * Where the named tensor's bytes go, as a mapping of the file (mapped on first use); write
     * exactly its byte size. For streaming large tensors {@link #write} is cheaper.
     */
    public synchronized MemorySegment slot(String name) {
        long[] x = extent(name);
        if (mapped == null) {
            try {
                mapped = channel.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot map " + path + ": " + e.getMessage(), e);
            }
        }
        return mapped.asSlice(x[0], x[1]);
    }

    /** Writes the named tensor's bytes (exactly its byte size) to its place with positional writes. */
    public void write(String name, MemorySegment bytes) {
        long[] x = extent(name);
        if (bytes.byteSize() != x[1]) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + x[1] + " bytes in " + path + ", got " + bytes.byteSize());
        }
        write(name, 0, bytes);
    }

    /**
     * Writes {@code bytes} at byte {@code offset} of the named tensor's place with positional writes:
     * a tensor written block by block never sits whole in memory.
     */
    public void write(String name, long offset, MemorySegment bytes) {
        long[] x = extent(name);
        if (offset < 0 || offset > x[1] - bytes.byteSize()) {
            throw new IllegalArgumentException("bytes [" + offset + ", " + (offset + bytes.byteSize()) + ") are outside tensor '" + name
                    + "' (" + x[1] + " bytes) in " + path);
        }
        try {
            long done = 0, size = bytes.byteSize();
            while (done < size) {
                long n = Math.min(1L << 30, size - done);
                java.nio.ByteBuffer b = bytes.asSlice(done, n).asByteBuffer();
                while (b.hasRemaining()) channel.write(b, x[0] + offset + done + b.position());
                done += n;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write tensor '" + name + "' to " + path + ": " + e.getMessage()
                    + "; check free disk space", e);
        }
    }

    private long[] extent(String name) {
        long[] x = extents.get(name);
        if (x == null) throw new IllegalArgumentException("no tensor '" + name + "' planned in " + path);
        return x;
    }

    /** Unmaps the file (the page cache writes it back). */
    @Override
    public void close() {
        // No fsync: the kernel writes the pages back on its own, as for any write(2), and the model
        // only appears at OUTPUT_DIR after the final rename.
        try {
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + path + ": " + e.getMessage(), e);
        } finally {
            arena.close();
        }
    }
}
