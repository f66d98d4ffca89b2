package dev.mergeforge.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Large-page buffers are zeroed, aligned, writable end to end and gone when their arena closes. */
class LargePagesTest {
    @Test
    void zeroedAlignedWritableAndFreedWithTheArena() {
        MemorySegment kept;
        try (Arena arena = Arena.ofShared()) {
            for (long bytes : new long[] {100, (2L << 20) - 4, 2L << 20, (5L << 20) + 12}) {
                MemorySegment s = LargePages.allocate(arena, bytes, 64);
                assertEquals(bytes, s.byteSize());
                assertEquals(0, s.address() % 64, "alignment");
                for (long i = 0; i < bytes; i += 4093) assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i), "fresh memory is zero");
                s.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) 7);
                s.set(ValueLayout.JAVA_BYTE, 0, (byte) 9);
                assertEquals(7, s.get(ValueLayout.JAVA_BYTE, bytes - 1));
                assertEquals(9, s.get(ValueLayout.JAVA_BYTE, 0));
            }
            kept = LargePages.allocate(arena, 3L << 20, 64);
        }
        assertFalse(kept.scope().isAlive());
        MemorySegment k = kept;
        assertThrows(IllegalStateException.class, () -> k.get(ValueLayout.JAVA_BYTE, 0));
    }
}
