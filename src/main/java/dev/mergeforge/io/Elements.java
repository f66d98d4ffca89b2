package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.TensorView;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Element-wise reads and writes of float tensors in their stored dtype (little-endian, unaligned),
 * for code that computes a few rows at a time (derived tensors). Values are written through
 * float32: a double is rounded to float32, then to bf16/f16 with round-to-nearest-even.
 */
public final class Elements {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Elements() {}

    /** Element {@code i} of {@code s} holding {@code dt} values. */
    public static double get(MemorySegment s, DType dt, long i) {
        return switch (dt) {
            case F32 -> s.getAtIndex(F32, i);
            case F64 -> s.getAtIndex(F64, i);
            case BF16 -> Floats.bf16ToFloat(s.getAtIndex(I16, i));
            case F16 -> Floats.f16ToFloat(s.getAtIndex(I16, i));
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException("not a float dtype: " + dt);
        };
    }

    /** Writes {@code v} as element {@code i} (rounded through float32). */
    public static void put(MemorySegment s, DType dt, long i, double v) {
        float f = (float) v;
        switch (dt) {
            case F32 -> s.setAtIndex(F32, i, f);
            case F64 -> s.setAtIndex(F64, i, f);
            case BF16 -> s.setAtIndex(I16, i, Floats.floatToBf16(f));
            case F16 -> s.setAtIndex(I16, i, Floats.floatToF16(f));
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException("not a float dtype: " + dt);
        }
    }

    /** Adds row {@code row} of {@code v} (a 2-D view) times {@code w} into {@code acc}. */
    public static void addRow(TensorView v, long row, double w, double[] acc) {
        long cols = acc.length, base = row * cols;
        for (int j = 0; j < cols; j++) acc[j] += w * get(v.data(), v.dtype(), base + j);
    }
}
