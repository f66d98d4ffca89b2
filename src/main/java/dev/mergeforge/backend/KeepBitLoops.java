package dev.mergeforge.backend;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The reference loops of {@link ChunkOps#nonZeroBits} and {@link ChunkOps#keepBits} on host memory
 * (the Java backend, and CUDA inside {@link ChunkOps#onHost}): bit j of {@code bits}, little-endian
 * 64-bit words, stands for element {@code from + j} of the tile.
 */
public final class KeepBitLoops {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong WORD = ValueLayout.JAVA_LONG_UNALIGNED;

    private KeepBitLoops() {}

    /** Words of bits that {@code n} elements take. */
    public static long words(long n) { return (n + 63) / 64; }

    /** Bit j set iff the float bits of x[from + j] are not those of +0.0; a last word's unused bits cleared. */
    public static void nonZeroBits(Tile x, long from, long n, MemorySegment bits) {
        check(x, from, n, bits);
        MemorySegment a = x.data();
        for (long k = 0, nw = words(n); k < nw; k++) {
            long lo = k * 64, hi = Math.min(n, lo + 64), w = 0;
            for (long j = lo; j < hi; j++) {
                if (a.getAtIndex(I32, from + j) != 0) w |= 1L << (j - lo);
            }
            bits.setAtIndex(WORD, k, w);
        }
    }

    /** x[from + j] = +0.0 where bit j is clear; unchanged where set. */
    public static void keepBits(Tile x, long from, long n, MemorySegment bits) {
        check(x, from, n, bits);
        MemorySegment a = x.data();
        for (long k = 0, nw = words(n); k < nw; k++) {
            long lo = k * 64, hi = Math.min(n, lo + 64), w = bits.getAtIndex(WORD, k);
            for (long j = lo; j < hi; j++) {
                if ((w >>> (j - lo) & 1) == 0) a.setAtIndex(I32, from + j, 0);
            }
        }
    }

    /** The range lies in the tile and the bits hold its words. */
    public static void check(Tile x, long from, long n, MemorySegment bits) {
        if (from < 0 || n < 0 || from + n > x.size()) {
            throw new IllegalArgumentException("elements [" + from + ", " + (from + n) + ") of a tile of " + x.size());
        }
        if (bits.byteSize() < words(n) * 8) throw new IllegalArgumentException(n + " keep bits need " + words(n) * 8 + " bytes, got " + bits.byteSize());
    }
}
