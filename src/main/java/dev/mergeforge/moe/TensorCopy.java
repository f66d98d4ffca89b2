package dev.mergeforge.moe;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Copies a stored tensor into an output slot, converting the float dtype and scaling element by element (no buffer). */
final class TensorCopy {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private TensorCopy() {}

    static void copy(TensorView v, MemorySegment dst, DType out, double scale) {
        MemorySegment src = v.data();
        if (v.dtype() == out && scale == 1) {
            MemorySegment.copy(src, 0, dst, 0, src.byteSize());
            return;
        }
        if (!v.dtype().isFloat()) {
            throw new CheckpointException(v.source() + ": tensor '" + v.name() + "' is " + v.dtype() + "; only float tensors can change dtype");
        }
        for (long i = 0; i < v.numel(); i++) put(dst, i, out, (float) (get(src, i, v.dtype()) * scale));
    }

    static void fromFloats(float[] x, MemorySegment dst, DType out) {
        for (int i = 0; i < x.length; i++) put(dst, i, out, x[i]);
    }

    private static double get(MemorySegment s, long i, DType t) {
        return switch (t) {
            case F32 -> s.getAtIndex(F32, i);
            case F64 -> s.getAtIndex(F64, i);
            case BF16 -> Floats.bf16ToFloat(s.getAtIndex(S16, i));
            case F16 -> Floats.f16ToFloat(s.getAtIndex(S16, i));
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException("not a float dtype: " + t);
        };
    }

    private static void put(MemorySegment s, long i, DType t, float v) {
        switch (t) {
            case F32 -> s.setAtIndex(F32, i, v);
            case F64 -> s.setAtIndex(F64, i, v);
            case BF16 -> s.setAtIndex(S16, i, Floats.floatToBf16(v));
            case F16 -> s.setAtIndex(S16, i, Floats.floatToF16(v));
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException("not a float dtype: " + t);
        }
    }
}
