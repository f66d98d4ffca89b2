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
 * tensor's offset) is fixed before any data, the file is sized and mapped read-write, and each
 * tensor is written straight into its slot by whoever holds {@link #slot(String)}: a streaming
 * merge never buffers a whole shard.
 *
 * <p>Lifetime: the mapping lives until {@link #close()}, which flushes it to disk.
 */
public final class SafetensorsWriter implements AutoCloseable {
    /** One tensor of the file, in the order it is laid out. */
    public record Entry(String name, DType dtype, Shape shape) {
        public long byteSize() { return Math.multiplyExact(shape.numel(), (long) dtype.byteSize()); }
    }

    private final Path path;
    private final Arena arena = Arena.ofShared();
    private final Map<String, MemorySegment> slots = new LinkedHashMap<>();
    private final MemorySegment file;

    public SafetensorsWriter(Path path, List<Entry> entries, Map<String, String> metadata) {
        this.path = path;
        byte[] header = headerBytes(entries, metadata);
        long dataStart = 8 + header.length;
        long total = dataStart;
        for (Entry e : entries) total = Math.addExact(total, e.byteSize());
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            file = ch.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot create " + path + ": " + e.getMessage(), e);
        }
        file.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, header.length);
        MemorySegment.copy(MemorySegment.ofArray(header), 0, file, 8, header.length);
        long off = dataStart;
        for (Entry e : entries) {
            slots.put(e.name(), file.asSlice(off, e.byteSize()));
            off += e.byteSize();
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

    /** Where the named tensor's bytes go; write exactly its byte size. */
    public MemorySegment slot(String name) {
        MemorySegment s = slots.get(name);
        if (s == null) throw new IllegalArgumentException("no tensor '" + name + "' planned in " + path);
        return s;
    }

    /** Flushes the mapping to disk and unmaps it. */
    @Override
    public void close() {
        try {
            if (file.byteSize() > 0) file.force();
        } finally {
            arena.close();
        }
    }
}
