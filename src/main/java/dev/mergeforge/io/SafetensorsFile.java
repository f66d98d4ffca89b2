package dev.mergeforge.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file, memory-mapped read-only. Layout: u64 little-endian header length N, N
 * bytes of JSON header, then the data block; each tensor's {@code data_offsets} are relative to
 * the data block. Nothing in the header is trusted: sizes, offsets, dtypes and shapes are all
 * checked against each other and the file length before any tensor is handed out.
 *
 * <p>Lifetime: the mapping lives in this object's arena; every {@link TensorView} it returned is
 * invalid after {@link #close()}.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** Headers larger than this are refused: real ones are a few hundred KiB at most. */
    public static final long MAX_HEADER_BYTES = 100L << 20;
    /** Strict JSON: a repeated key (two tensors with one name) or text after the object is an error. */
    static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapped;
    private final Map<String, TensorView> tensors;
    private final Map<String, String> metadata;
    /** Opened on the first {@link #readInto}; closed with the file. */
    private FileChannel reader;
    /** A descriptor for page-cache advice ({@link PageCache}), opened on the first {@link #evict}; -1 when none could be. */
    private int adviceFd = -2;

    private SafetensorsFile(Path path, Arena arena, MemorySegment mapped, Map<String, TensorView> tensors, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.mapped = mapped;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Maps and validates a file; throws {@link CheckpointException} naming the file and what is wrong. */
    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment seg = size == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            SafetensorsFile f = parse(path, arena, seg, size);
            return f;
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException("cannot read " + path + ": " + e.getMessage() + "; check the path and its permissions", e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, Arena arena, MemorySegment seg, long size) {
        String where = path.toString();
        if (size < 8) throw bad(where, "file is " + size + " bytes, too short for a safetensors header");
        long n = seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0);
        if (n < 2 || n > MAX_HEADER_BYTES || n > size - 8) {
            throw bad(where, "header length field says " + Long.toUnsignedString(n) + " bytes but the file has "
                    + (size - 8) + " bytes after it (limit " + MAX_HEADER_BYTES + ")");
        }
        byte[] hb = seg.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        JsonNode root;
        try {
            // malformed UTF-8 is an error, never silently replaced (it would corrupt tensor names)
            String text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(hb)).toString();
            root = JSON.readTree(text);
        } catch (CharacterCodingException e) {
            throw bad(where, "header is not valid UTF-8");
        } catch (JsonProcessingException e) {
            throw bad(where, "header is not valid JSON (" + jsonError(e) + ")");
        }
        if (root == null || !root.isObject()) throw bad(where, "header is not a JSON object");
        long dataStart = 8 + n;
        long dataSize = size - dataStart;
        MemorySegment data = seg.asSlice(dataStart, dataSize);
        Map<String, TensorView> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        List<long[]> ranges = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) throw bad(where, "__metadata__ is not an object of strings");
                v.properties().forEach(m -> {
                    if (!m.getValue().isTextual()) throw bad(where, "__metadata__ value of '" + m.getKey() + "' is not a string");
                    metadata.put(m.getKey(), m.getValue().asText());
                });
                continue;
            }
            if (!v.isObject()) throw bad(where, "entry for tensor '" + name + "' is not an object");
            JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
            if (dt == null || !dt.isTextual() || sh == null || !sh.isArray() || off == null || !off.isArray() || off.size() != 2) {
                throw bad(where, "tensor '" + name + "' needs string dtype, array shape and two data_offsets");
            }
            DType dtype;
            try {
                dtype = DType.fromSafetensors(dt.asText());
            } catch (IllegalArgumentException ex) {
                throw bad(where, "tensor '" + name + "': " + ex.getMessage());
            }
            long[] dims = new long[sh.size()];
            for (int i = 0; i < dims.length; i++) {
                JsonNode d = sh.get(i);
                if (!d.canConvertToExactIntegral() || !d.canConvertToLong() || d.asLong() < 0) {
                    throw bad(where, "tensor '" + name + "' has a bad dimension " + d + " in its shape");
                }
                dims[i] = d.asLong();
            }
            long begin = checkedOffset(where, name, off.get(0)), end = checkedOffset(where, name, off.get(1));
            Shape shape = Shape.of(dims);
            long bytes;
            try {
                bytes = Math.multiplyExact(shape.numel(), (long) dtype.byteSize());
            } catch (ArithmeticException ex) {
                throw bad(where, "tensor '" + name + "' shape " + shape + " is too large");
            }
            if (end < begin || end > dataSize) {
                throw bad(where, "tensor '" + name + "' data_offsets [" + begin + ", " + end + "] fall outside the "
                        + dataSize + "-byte data block (file truncated or corrupt)");
            }
            if (end - begin != bytes) {
                throw bad(where, "tensor '" + name + "' is " + dtype + shape + " = " + bytes + " bytes but its data_offsets span "
                        + (end - begin) + " bytes");
            }
            ranges.add(new long[] {begin, end, tensors.size()});
            tensors.put(name, new TensorView(name, dtype, shape, data.asSlice(begin, bytes), where));
        }
        checkTiling(where, ranges, new ArrayList<>(tensors.keySet()), dataSize);
        return new SafetensorsFile(path, arena, seg, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    private static long checkedOffset(String where, String name, JsonNode n) {
        if (n == null || !n.canConvertToExactIntegral() || !n.canConvertToLong() || n.asLong() < 0) {
            throw bad(where, "tensor '" + name + "' has a bad data offset " + n);
        }
        return n.asLong();
    }

    /**
     * The data block must be exactly tiled by the tensors, as the reference safetensors library
     * requires: sorted by offset, each tensor starts where the previous one ended (no overlap, no
     * hole) and the last one ends at the end of the file (no trailing bytes).
     */
    private static void checkTiling(String where, List<long[]> ranges, List<String> names, long dataSize) {
        ranges.sort(Comparator.<long[]>comparingLong(r -> r[0]).thenComparingLong(r -> r[1]));
        long expected = 0;
        String previous = null;
        for (long[] r : ranges) {
            String name = names.get((int) r[2]);
            if (r[0] < expected) {
                throw bad(where, "tensors '" + previous + "' and '" + name + "' overlap in the data block (corrupt file)");
            }
            if (r[0] > expected) {
                throw bad(where, "hole of " + (r[0] - expected) + " bytes in the data block before tensor '" + name
                        + "' (corrupt file)");
            }
            expected = r[1];
            previous = name;
        }
        if (expected != dataSize) {
            throw bad(where, (dataSize - expected) + " bytes after the last tensor's data (file corrupt or not safetensors)");
        }
    }

    /** A Jackson error as one line: the message and where it happened. */
    static String jsonError(JsonProcessingException e) {
        String m = String.valueOf(e.getOriginalMessage()).replaceAll("\\s+", " ").trim();
        return e.getLocation() == null ? m : m + " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
    }

    private static CheckpointException bad(String where, String what) {
        return new CheckpointException(where + ": " + what + "; re-download or re-save the file");
    }

    public Path path() { return path; }

    /** Tensor names in header order. */
    public List<String> names() { return List.copyOf(tensors.keySet()); }

    public Map<String, TensorView> tensors() { return tensors; }

    public Map<String, String> metadata() { return metadata; }

    public boolean contains(String name) { return tensors.containsKey(name); }

    /** The tensor, or a {@link CheckpointException} naming the file. */
    public TensorView tensor(String name) {
        TensorView t = tensors.get(name);
        if (t == null) throw new CheckpointException(path + ": no tensor named '" + name + "'");
        return t;
    }

    /** Whether {@code v}'s bytes lie inside this file's mapping (it is one of this file's tensors, or a slice of one). */
    public boolean holds(TensorView v) {
        long a = v.data().address(), b = mapped.address();
        return v.data().byteSize() > 0 && a >= b && a + v.data().byteSize() <= b + mapped.byteSize();
    }

    /**
     * Copies {@code v}'s stored bytes into {@code dst} with positional reads, never touching the
     * mapping. On a VM, mapping page-cache pages into a process can cost microseconds per page, so
     * the first pass over a mapping reads far slower than the kernel copies the same pages out
     * (`mergeforge bench` prints both read speeds; see BENCHMARKS.md). Thread-safe.
     */
    public void readInto(TensorView v, MemorySegment dst) {
        if (!holds(v)) throw new IllegalArgumentException("tensor " + v.name() + " is not in " + path);
        if (dst.byteSize() != v.data().byteSize()) {
            throw new IllegalArgumentException(v.name() + ": " + v.data().byteSize() + " bytes into a " + dst.byteSize() + "-byte buffer");
        }
        long at = v.data().address() - mapped.address();
        try {
            FileChannel ch = reader();
            for (long done = 0, n = dst.byteSize(); done < n; ) {
                java.nio.ByteBuffer buf = dst.asSlice(done, Math.min(n - done, 1L << 30)).asByteBuffer();
                while (buf.hasRemaining()) {
                    int r = ch.read(buf, at + done + buf.position());
                    if (r < 0) throw new CheckpointException(path + " ended inside tensor '" + v.name() + "'; the file changed while being merged");
                }
                done += buf.capacity();
            }
        } catch (IOException e) {
            throw new CheckpointException("cannot read tensor '" + v.name() + "' from " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * Drops bytes [from, from + length) of {@code v} from this process's mapping and then from the
     * page cache ({@link PageCache#dropRange}: whole pages only), for a reader done with them
     * (docs/io.md, "Inputs larger than memory"). The data stays readable: a later read comes from
     * disk. Returns whether the page cache was asked to drop them.
     */
    public boolean evict(TensorView v, long from, long length) {
        if (!holds(v)) throw new IllegalArgumentException("tensor " + v.name() + " is not in " + path);
        if (from < 0 || length < 0 || from + length > v.data().byteSize()) {
            throw new IllegalArgumentException(v.name() + ": bytes [" + from + ", " + (from + length) + ") of " + v.data().byteSize());
        }
        if (length == 0) return false;
        Madvise.dontNeed(v.data().asSlice(from, length));
        long at = v.data().address() - mapped.address() + from;
        int fd = adviceFd();
        // a file written moments ago (a generated model) still has dirty pages, which cannot be dropped: written back first
        PageCache.writeBack(fd, at, length, true);
        return PageCache.dropRange(fd, at, length);
    }

    /** Advises the whole mapping read front to back ({@link Madvise#sequential}): for a reader that drops pages behind it. */
    public void adviseSequential() {
        if (mapped.byteSize() > 0) Madvise.sequential(mapped);
    }

    private synchronized int adviceFd() {
        if (adviceFd == -2) adviceFd = PageCache.open(path);
        return adviceFd;
    }

    private synchronized FileChannel reader() throws IOException {
        if (reader == null) reader = FileChannel.open(path, StandardOpenOption.READ);
        return reader;
    }

    @Override
    public synchronized void close() {
        try {
            if (reader != null) reader.close();
        } catch (IOException ignored) {
            // read-only: nothing to lose
        } finally {
            reader = null;
            PageCache.close(adviceFd);
            adviceFd = -1;
            arena.close();
        }
    }
}
