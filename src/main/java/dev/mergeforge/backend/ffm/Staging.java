package dev.mergeforge.backend.ffm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Hands native code only off-heap memory. Native segments pass through unchanged; a heap segment
 * (a {@code Tile.ofArray} tile, a heap {@code TensorView}) is copied into a confined arena for the
 * call and, if the op writes it, copied back by {@link #commit()}. Every segment is first checked
 * to hold at least the bytes the native call will touch, and to be alive and accessible from this
 * thread, so no native call can reach memory outside what it was given. One staging per call,
 * opened and closed in try-with-resources on the calling thread.
 */
final class Staging implements AutoCloseable {
    private Arena arena;
    private final List<MemorySegment[]> writeBack = new ArrayList<>();

    /** A segment native code may read {@code bytes} bytes from. */
    MemorySegment in(MemorySegment s, long bytes, String what) {
        check(s, bytes, what);
        if (s.isNative()) return s;
        MemorySegment c = arena().allocate(Math.max(1, bytes), 64).asSlice(0, bytes);
        c.copyFrom(s.asSlice(0, bytes));
        return c;
    }

    /** A segment native code may read and write {@code bytes} bytes of. */
    MemorySegment inOut(MemorySegment s, long bytes, String what) {
        MemorySegment c = in(s, bytes, what);
        if (c != s) writeBack.add(new MemorySegment[] {c, s});
        return c;
    }

    /** A segment native code only writes {@code bytes} bytes of. */
    MemorySegment out(MemorySegment s, long bytes, String what) {
        check(s, bytes, what);
        if (s.isNative()) return s;
        MemorySegment c = arena().allocate(Math.max(1, bytes), 64).asSlice(0, bytes);
        writeBack.add(new MemorySegment[] {c, s});
        return c;
    }

    /** A native array of the addresses of {@code segs} (each already staged). */
    MemorySegment addresses(MemorySegment[] segs) {
        MemorySegment a = arena().allocate(java.lang.foreign.ValueLayout.ADDRESS, Math.max(1, segs.length));
        for (int j = 0; j < segs.length; j++) a.setAtIndex(java.lang.foreign.ValueLayout.ADDRESS, j, segs[j]);
        return a;
    }

    /** A native copy of a float array. */
    MemorySegment floats(float[] v) {
        MemorySegment a = arena().allocate(java.lang.foreign.ValueLayout.JAVA_FLOAT, Math.max(1, v.length));
        MemorySegment.copy(v, 0, a, java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, v.length);
        return a;
    }

    /** A native copy of an int array. */
    MemorySegment ints(int[] v) {
        MemorySegment a = arena().allocate(java.lang.foreign.ValueLayout.JAVA_INT, Math.max(1, v.length));
        MemorySegment.copy(v, 0, a, java.lang.foreign.ValueLayout.JAVA_INT, 0, v.length);
        return a;
    }

    /** A native copy of a long array. */
    MemorySegment longs(long[] v) {
        MemorySegment a = arena().allocate(java.lang.foreign.ValueLayout.JAVA_LONG, Math.max(1, v.length));
        MemorySegment.copy(v, 0, a, java.lang.foreign.ValueLayout.JAVA_LONG, 0, v.length);
        return a;
    }

    /** Native scratch for {@code n} doubles (zeroed). */
    MemorySegment doubles(long n) {
        return arena().allocate(java.lang.foreign.ValueLayout.JAVA_DOUBLE, Math.max(1, n));
    }

    /** Copies staged outputs back to their heap segments; call after the native call succeeded. */
    void commit() {
        for (MemorySegment[] p : writeBack) p[1].asSlice(0, p[0].byteSize()).copyFrom(p[0]);
        writeBack.clear();
    }

    private Arena arena() {
        if (arena == null) arena = Arena.ofConfined();
        return arena;
    }

    private static void check(MemorySegment s, long bytes, String what) {
        if (bytes < 0 || s.byteSize() < bytes) {
            throw new IllegalArgumentException("native call on " + what + ": needs " + bytes + " bytes, segment has " + s.byteSize());
        }
        if (!s.scope().isAlive()) throw new IllegalStateException("native call on " + what + ": its memory was already freed");
        if (!s.isAccessibleBy(Thread.currentThread())) {
            throw new IllegalStateException("native call on " + what + ": its memory is confined to another thread");
        }
    }

    @Override
    public void close() {
        if (arena != null) arena.close();
    }
}
