package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link SafetensorsWriter#write(String, long, MemorySegment)}: a tensor written in blocks at byte offsets. */
class SafetensorsWriterBlocksTest {
    @TempDir Path dir;

    /** Little-endian float32 bytes off the heap (positional writes need a native segment). */
    private static MemorySegment f(float... v) {
        MemorySegment m = java.lang.foreign.Arena.ofAuto().allocate(4L * v.length);
        for (int i = 0; i < v.length; i++) m.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), i, v[i]);
        return m;
    }

    @Test
    void blocksLandAtTheirOffsetsAndABlockPastTheTensorIsRefused() {
        Path p = dir.resolve("m.safetensors");
        List<SafetensorsWriter.Entry> es = List.of(new SafetensorsWriter.Entry("a", DType.F32, Shape.of(3)),
                new SafetensorsWriter.Entry("b", DType.F32, Shape.of(5)));
        try (SafetensorsWriter w = new SafetensorsWriter(p, es, Map.of())) {
            w.write("a", f(1, 2, 3));
            // b's five values as blocks of 2, 2 and 1, written out of order
            w.write("b", 8, f(30, 40));
            w.write("b", 16, f(50));
            w.write("b", 0, f(10, 20));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> w.write("b", 16, f(60, 70)));
            assertTrue(e.getMessage().contains("bytes [16, 24) are outside tensor 'b' (20 bytes) in " + p), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> w.write("b", -4, f(0)));
        }
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            float[] a = f.tensor("a").data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
            float[] b = f.tensor("b").data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
            assertEquals(List.of(1f, 2f, 3f), List.of(a[0], a[1], a[2]));
            assertEquals(List.of(10f, 20f, 30f, 40f, 50f), List.of(b[0], b[1], b[2], b[3], b[4]));
        }
    }
}
