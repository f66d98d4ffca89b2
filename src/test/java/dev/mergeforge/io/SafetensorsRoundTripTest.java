package dev.mergeforge.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Byte-level round trips through SafetensorsWriter and SafetensorsFile, and every header check. */
class SafetensorsRoundTripTest {
    @TempDir Path tmp;

    private static final List<SafetensorsWriter.Entry> ENTRIES = List.of(
            new SafetensorsWriter.Entry("a.weight", DType.F32, Shape.of(3, 5)),
            new SafetensorsWriter.Entry("b.bias", DType.BF16, Shape.of(7)),
            new SafetensorsWriter.Entry("c.half", DType.F16, Shape.of(2, 1, 3)),
            new SafetensorsWriter.Entry("d.empty", DType.F32, Shape.of(0, 4)),
            new SafetensorsWriter.Entry("e.ids", DType.I64, Shape.of(2)),
            new SafetensorsWriter.Entry("f.scalar", DType.F64, Shape.of()));

    @Test
    void roundTripKeepsEveryByteAndTheHeader() throws Exception {
        Path p = tmp.resolve("x.safetensors");
        Random rnd = new Random(3);
        List<byte[]> payloads = new ArrayList<>();
        try (SafetensorsWriter w = new SafetensorsWriter(p, ENTRIES, Map.of("format", "pt", "note", "ünïcode"))) {
            for (SafetensorsWriter.Entry e : ENTRIES) {
                byte[] b = new byte[(int) e.byteSize()];
                rnd.nextBytes(b);
                payloads.add(b);
                MemorySegment slot = w.slot(e.name());
                assertEquals(b.length, slot.byteSize());
                MemorySegment.copy(MemorySegment.ofArray(b), 0, slot, 0, b.length);
            }
        }
        byte[] raw = Files.readAllBytes(p);
        long n = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        // the header is padded so the data block starts 8-byte aligned
        assertEquals(0, n % 8, "header length " + n);
        assertEquals(SafetensorsWriter.fileSize(ENTRIES, Map.of("format", "pt", "note", "ünïcode")), raw.length);
        JsonNode header = new ObjectMapper().readTree(new String(raw, 8, (int) n, StandardCharsets.UTF_8));
        long expectOffset = 0;
        for (int k = 0; k < ENTRIES.size(); k++) {
            SafetensorsWriter.Entry e = ENTRIES.get(k);
            JsonNode t = header.get(e.name());
            assertEquals(e.dtype().safetensorsName(), t.get("dtype").asText());
            long[] shape = new long[t.get("shape").size()];
            for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
            assertArrayEquals(e.shape().dims(), shape);
            assertEquals(expectOffset, t.get("data_offsets").get(0).asLong());
            assertEquals(expectOffset + payloads.get(k).length, t.get("data_offsets").get(1).asLong());
            byte[] onDisk = Arrays.copyOfRange(raw, (int) (8 + n + expectOffset), (int) (8 + n + expectOffset + payloads.get(k).length));
            assertArrayEquals(payloads.get(k), onDisk, e.name());
            expectOffset += payloads.get(k).length;
        }
        assertEquals("pt", header.get("__metadata__").get("format").asText());

        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(ENTRIES.stream().map(SafetensorsWriter.Entry::name).toList(), f.names());
            assertEquals("ünïcode", f.metadata().get("note"));
            for (int k = 0; k < ENTRIES.size(); k++) {
                TensorView v = f.tensor(ENTRIES.get(k).name());
                assertEquals(ENTRIES.get(k).dtype(), v.dtype());
                assertEquals(ENTRIES.get(k).shape(), v.shape());
                assertArrayEquals(payloads.get(k), v.data().toArray(ValueLayout.JAVA_BYTE));
            }
        }
    }

    @Test
    void writerRefusesDuplicateAndReservedNames() {
        List<SafetensorsWriter.Entry> dup = List.of(new SafetensorsWriter.Entry("w", DType.F32, Shape.of(1)),
                new SafetensorsWriter.Entry("w", DType.F32, Shape.of(2)));
        var e = assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter(tmp.resolve("d.safetensors"), dup, Map.of()));
        assertTrue(e.getMessage().contains("'w'"), e.getMessage());
        List<SafetensorsWriter.Entry> meta = List.of(new SafetensorsWriter.Entry("__metadata__", DType.F32, Shape.of(1)));
        assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter(tmp.resolve("m.safetensors"), meta, Map.of()));
    }

    private void refused(String header, int data, String... fragments) throws Exception {
        refused(header.getBytes(StandardCharsets.UTF_8), data, fragments);
    }

    private void refused(byte[] header, int data, String... fragments) throws Exception {
        Path p = RawSafetensors.write(Files.createTempFile(tmp, "bad", ".safetensors"), header, data);
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(p).close());
        String m = e.getMessage();
        assertTrue(m.contains(p.toString()), "names the file: " + m);
        assertTrue(m.contains("re-download or re-save"), "says the fix: " + m);
        for (String f : fragments) assertTrue(m.contains(f), "mentions '" + f + "': " + m);
    }

    @Test
    void acceptsAHandMadeMinimalFile() throws Exception {
        Path p = RawSafetensors.write(tmp.resolve("ok.safetensors"),
                "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of("b", "a"), f.names());
            assertArrayEquals(new byte[] {4, 5}, f.tensor("b").data().toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void refusesCorruptHeaders() throws Exception {
        String t = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
        refused("{\"a\":" + t + ",\"a\":" + t + "}", 4, "not valid JSON");
        refused("{\"a\":" + t + "} {}", 4, "not valid JSON");
        refused("{\"a\":" + t + ",", 4, "not valid JSON");
        refused("[1,2]", 0, "not a JSON object");
        byte[] badUtf8 = "{\"a\u00ff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}".getBytes(StandardCharsets.ISO_8859_1);
        refused(badUtf8, 1, "UTF-8");
        refused("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a'", "Q4");
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "'a'", "dimension");
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "'a'", "dimension");
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "'a'", "two data_offsets");
        refused("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__");
    }

    @Test
    void refusesOffsetsThatDoNotTileTheDataBlock() throws Exception {
        // size disagreement between dtype x shape and the offsets
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "'a'", "8 bytes", "span 4");
        // past the end (truncated file)
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "'a'", "truncated");
        // overlap
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "'a'", "'b'", "overlap");
        // hole between tensors
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                12, "hole of 4 bytes", "'b'");
        // bytes after the last tensor
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, "5 bytes after the last tensor");
        // negative offsets
        refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 0, "'a'", "data offset");
    }

    @Test
    void refusesBadLengthFields() throws Exception {
        Path shortFile = tmp.resolve("short.safetensors");
        Files.write(shortFile, new byte[] {1, 2, 3});
        var e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(shortFile));
        assertTrue(e.getMessage().contains("too short") && e.getMessage().contains(shortFile.toString()), e.getMessage());

        Path huge = tmp.resolve("huge.safetensors");
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).putLong(0);
        Files.write(huge, b.array());
        e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(huge));
        assertTrue(e.getMessage().contains("header length") && e.getMessage().contains(huge.toString()), e.getMessage());

        Path missing = tmp.resolve("missing.safetensors");
        e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }
}
