package dev.mergeforge.backend;

import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Floats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Finds NaN or infinite values in stored tensors by their bits (exponent all ones), eight bytes
 * at a time, without converting: the reference of {@link Backend#firstNonFinite}, which the merger
 * runs on every input while the read-ahead thread pulls it in.
 */
public final class NonFinite {
    private static final ValueLayout.OfLong W = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private NonFinite() {}

    /** The lowest element index holding NaN or ±Inf, or -1 (also -1 for non-float dtypes). */
    public static long firstIndex(TensorView v) {
        MemorySegment s = v.data();
        return switch (v.dtype()) {
            case BF16 -> scan16(s, 0x7F80);
            case F16 -> scan16(s, 0x7C00);
            case F32 -> scan32(s);
            case F64 -> {
                for (long i = 0, n = s.byteSize() / 8; i < n; i++) {
                    if ((s.getAtIndex(L, i) & 0x7FF0000000000000L) == 0x7FF0000000000000L) yield i;
                }
                yield -1;
            }
            case I64, I32, I16, I8, U8, BOOL -> -1;
        };
    }

    /** Element i of a float tensor as a float, for messages. */
    public static float valueAt(TensorView v, long i) {
        MemorySegment s = v.data();
        return switch (v.dtype()) {
            case BF16 -> Floats.bf16ToFloat(s.getAtIndex(S, i));
            case F16 -> Floats.f16ToFloat(s.getAtIndex(S, i));
            case F32 -> Float.intBitsToFloat(s.getAtIndex(I, i));
            case F64 -> (float) Double.longBitsToDouble(s.getAtIndex(L, i));
            case I64, I32, I16, I8, U8, BOOL -> Float.NaN;
        };
    }

    /** 16-bit lanes: a lane whose masked exponent equals the mask is non-finite. */
    private static long scan16(MemorySegment s, int mask) {
        long n = s.byteSize() / 2, words = n / 4;
        long m = mask & 0xFFFFL;
        long mm = m | m << 16 | m << 32 | m << 48;
        for (long w = 0; w < words; w++) {
            long x = ~s.getAtIndex(W, w) & mm;         // a lane is zero iff all its exponent bits are set
            if (((x - 0x0001000100010001L) & ~x & 0x8000800080008000L) != 0) {
                for (long i = w * 4; i < w * 4 + 4; i++) if ((s.getAtIndex(S, i) & mask) == mask) return i;
            }
        }
        for (long i = words * 4; i < n; i++) if ((s.getAtIndex(S, i) & mask) == mask) return i;
        return -1;
    }

    private static long scan32(MemorySegment s) {
        long n = s.byteSize() / 4, words = n / 2;
        long mm = 0x7F8000007F800000L;
        for (long w = 0; w < words; w++) {
            long x = ~s.getAtIndex(W, w) & mm;
            if (((x - 0x0000000100000001L) & ~x & 0x8000000080000000L) != 0) {
                for (long i = w * 2; i < w * 2 + 2; i++) if ((s.getAtIndex(I, i) & 0x7F800000) == 0x7F800000) return i;
            }
        }
        for (long i = words * 2; i < n; i++) if ((s.getAtIndex(I, i) & 0x7F800000) == 0x7F800000) return i;
        return -1;
    }
}
