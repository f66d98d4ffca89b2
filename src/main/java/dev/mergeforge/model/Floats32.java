package dev.mergeforge.model;

import dev.mergeforge.backend.ffm.NativeMatMul;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Floats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/** Reads stored tensors (F32, BF16, F16, F64) into float32 arrays, whole or a range of rows. */
final class Floats32 {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Floats32() {}

    /** The whole tensor, after checking it has exactly the expected dims. */
    static float[] read(TensorView t, long... dims) { return read(t, null, dims); }

    /**
     * The whole tensor into {@code into} (every element written; it must hold exactly the tensor's
     * elements) or, when null, a new array, after checking it has exactly the expected dims.
     */
    static float[] read(TensorView t, float[] into, long... dims) {
        checkShape(t, dims);
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new CheckpointException(t.source() + ": tensor '" + t.name() + "' has " + t.numel() + " elements, too many for one array");
        }
        if (into != null && into.length != t.numel()) {
            throw new IllegalArgumentException("array of " + into.length + " floats for tensor '" + t.name() + "' of " + t.numel());
        }
        float[] out = into != null ? into : new float[(int) t.numel()];
        copy(t, 0, out, 0, out.length);
        return out;
    }

    static void checkShape(TensorView t, long... dims) {
        if (!Arrays.equals(t.shape().dims(), dims)) {
            throw new CheckpointException(t.source() + ": tensor '" + t.name() + "' has shape " + Arrays.toString(t.shape().dims())
                    + " but config.json implies " + Arrays.toString(dims) + "; config and weights do not match");
        }
    }

    /** Copies n elements starting at flat element {@code from} into out[at..]. */
    static void copy(TensorView t, long from, float[] out, int at, int n) {
        MemorySegment s = t.data();
        switch (t.dtype()) {
            case F32 -> MemorySegment.copy(s, F32, from * 4, out, at, n);
            // the native SIMD conversion where built (same bits; the loader thread's work overlaps the products)
            case BF16 -> {
                if (NativeMatMul.available()) NativeMatMul.toFloats(s.asSlice(from * 2, n * 2L), false, out, at, n);
                else for (int i = 0; i < n; i++) out[at + i] = Floats.bf16ToFloat(s.getAtIndex(S16, from + i));
            }
            case F16 -> {
                if (NativeMatMul.available()) NativeMatMul.toFloats(s.asSlice(from * 2, n * 2L), true, out, at, n);
                else for (int i = 0; i < n; i++) out[at + i] = Floats.f16ToFloat(s.getAtIndex(S16, from + i));
            }
            case F64 -> { for (int i = 0; i < n; i++) out[at + i] = (float) s.getAtIndex(F64, from + i); }
            case I64, I32, I16, I8, U8, BOOL -> throw new CheckpointException(t.source() + ": tensor '" + t.name() + "' is "
                    + t.dtype() + ", not a float type; this is not a float checkpoint (quantized models are not supported)");
        }
    }
}
