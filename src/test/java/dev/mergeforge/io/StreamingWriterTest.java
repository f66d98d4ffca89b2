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

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void writesTheSameBytesAsTheRandomAccessWriter(boolean direct) throws Exception {
        Random r = new Random(5);
        List<byte[]> data = new ArrayList<>();
        for (SafetensorsWriter.Entry e : entries()) {
            byte[] b = new byte[(int) e.byteSize()];
            r.nextBytes(b);
            data.add(b);
        }
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
