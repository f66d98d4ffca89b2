package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StreamingWriterTest {
    @TempDir Path dir;

    /** Tensors of odd byte sizes, some larger than a block, so writes straddle block edges. */
    static List<SafetensorsWriter.Entry> entries() {
        return List.of(new SafetensorsWriter.Entry("a", DType.BF16, Shape.of(3, 7)),
                new SafetensorsWriter.Entry("b", DType.F32, Shape.of(5000)),
                new SafetensorsWriter.Entry("c", DType.F16, Shape.of(1)),
                new SafetensorsWriter.Entry("d", DType.F32, Shape.of(0)),
                new SafetensorsWriter.Entry("e", DType.BF16, Shape.of(12345)));
    }

    /** Random bytes for each of {@link #entries()}. */
    static List<byte[]> randomData(long seed) {
        Random r = new Random(seed);
        List<byte[]> data = new ArrayList<>();
        for (SafetensorsWriter.Entry e : entries()) {
            byte[] b = new byte[(int) e.byteSize()];
            r.nextBytes(b);
            data.add(b);
        }
        return data;
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void writesTheSameBytesAsTheRandomAccessWriter(boolean direct) throws Exception {
        List<byte[]> data = randomData(5);
        Path ref = dir.resolve("ref.safetensors"), out = dir.resolve("out.safetensors");
        try (SafetensorsWriter w = new SafetensorsWriter(ref, entries(), Map.of("format", "pt"))) {
            for (int i = 0; i < data.size(); i++) w.slot(entries().get(i).name()).copyFrom(MemorySegment.ofArray(data.get(i)));
        }
        try (StreamingWriter w = new StreamingWriter(out, entries(), Map.of("format", "pt"), 8192, direct)) {
            for (int i = 0; i < data.size(); i++) w.write(entries().get(i).name(), MemorySegment.ofArray(data.get(i)));
            w.finish();
        }
        assertArrayEquals(Files.readAllBytes(ref), Files.readAllBytes(out));
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertTrue(f.contains("e"));
        }
    }

    /**
     * fill (bytes computed in place) gives the same file as write: pieces are cut at block edges only,
     * each a whole number of elements; a tensor starting off an element boundary ("b", f32 after 42
     * bytes of bf16) or a filler declining its first piece leaves nothing written, and write follows.
     */
    @Test
    void fillWritesInPlaceInWholeElementPiecesOrDeclines() throws Exception {
        List<byte[]> data = randomData(6);
        Path ref = dir.resolve("ref.safetensors"), out = dir.resolve("fill.safetensors");
        try (StreamingWriter w = new StreamingWriter(ref, entries(), Map.of(), 8192, false)) {
            for (int i = 0; i < data.size(); i++) w.write(entries().get(i).name(), MemorySegment.ofArray(data.get(i)));
            w.finish();
        }
        List<String> filled = new ArrayList<>();
        try (StreamingWriter w = new StreamingWriter(out, entries(), Map.of(), 8192, false)) {
            for (int i = 0; i < data.size(); i++) {
                SafetensorsWriter.Entry e = entries().get(i);
                MemorySegment src = MemorySegment.ofArray(data.get(i));
                long el = e.dtype().byteSize();
                List<Long> pieces = new ArrayList<>();
                boolean declineFirst = e.name().equals("c");
                boolean done = w.fill(e.name(), el, (offset, dst) -> {
                    if (declineFirst) return false;
                    assertEquals(0, offset % el, "piece starts inside an element");
                    assertEquals(0, dst.byteSize() % el, "piece ends inside an element");
                    pieces.add(dst.byteSize());
                    dst.copyFrom(src.asSlice(offset, dst.byteSize()));
                    return true;
                });
                if (done) {
                    filled.add(e.name());
                    assertEquals(e.byteSize(), pieces.stream().mapToLong(Long::longValue).sum());
                } else {
                    assertTrue(pieces.isEmpty());
                    w.write(e.name(), src);
                }
            }
            w.finish();
        }
        assertArrayEquals(Files.readAllBytes(ref), Files.readAllBytes(out));
        assertEquals(List.of("a", "d", "e"), filled, "b starts off a 4-byte boundary, c declined");
    }

    /** With a cut, no piece spans a multiple of the cut (chunk edges) nor a block edge, and the file is the same. */
    @Test
    void fillWithACutNeverSpansAChunkEdge() throws Exception {
        List<SafetensorsWriter.Entry> one = List.of(new SafetensorsWriter.Entry("w", DType.BF16, Shape.of(30_001)));
        byte[] data = new byte[60_002];
        new Random(8).nextBytes(data);
        Path ref = dir.resolve("cut-ref.safetensors"), out = dir.resolve("cut.safetensors");
        try (StreamingWriter w = new StreamingWriter(ref, one, Map.of(), 8192, false)) {
            w.write("w", MemorySegment.ofArray(data));
            w.finish();
        }
        long cut = 2 * 777;
        try (StreamingWriter w = new StreamingWriter(out, one, Map.of(), 8192, false)) {
            MemorySegment src = MemorySegment.ofArray(data);
            assertTrue(w.fill("w", 2, cut, (offset, dst) -> {
                assertEquals(offset / cut, (offset + dst.byteSize() - 1) / cut, "piece at " + offset + " spans a chunk edge");
                dst.copyFrom(src.asSlice(offset, dst.byteSize()));
                return true;
            }));
            w.finish();
        }
        assertArrayEquals(Files.readAllBytes(ref), Files.readAllBytes(out));
    }

    @Test
    void tensorsMustComeInPlanOrderAndAllBeWritten() {
        try (StreamingWriter w = new StreamingWriter(dir.resolve("x.safetensors"), entries(), Map.of(), 8192, false)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.write("b", MemorySegment.ofArray(new byte[20000])));
            assertTrue(e.getMessage().contains("out of order"), e.getMessage());
            w.write("a", MemorySegment.ofArray(new byte[42]));
            IllegalStateException e2 = assertThrows(IllegalStateException.class, w::finish);
            assertTrue(e2.getMessage().contains("never written"), e2.getMessage());
        }
    }
}
