package dev.mergeforge.backend;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Independent references for SCE's fused chunk ops ({@link ChunkOps#storedVariance},
 * {@link ChunkOps#disjointMean}): docs/methods.md's "sce" steps as plain float loops, one element
 * at a time, sharing no code with any backend; and stored inputs of every float dtype whose values
 * are known exactly (each value chosen representable in its dtype).
 */
public final class SceOpsReference {
    private SceOpsReference() { }

    /** var[i] = Σ_j (τ_j − μ)², τ_j = x_j − b (x_j when base is null), μ = (1/N)·Σ_j τ_j, every step rounded to float. */
    public static float[] variance(float[] base, List<float[]> xs) {
        int n = xs.getFirst().length, k = xs.size();
        float[] var = new float[n];
        for (int i = 0; i < n; i++) {
            float[] tau = new float[k];
            for (int j = 0; j < k; j++) tau[j] = base == null ? xs.get(j)[i] : xs.get(j)[i] - base[i];
            float sum = tau[0];
            for (int j = 1; j < k; j++) sum = sum + tau[j];
            float mean = (1f / k) * sum;
            float acc = 0f;
            for (int j = 0; j < k; j++) {
                float d = tau[j] - mean;
                acc = j == 0 ? d * d : acc + d * d;
            }
            var[i] = acc;
        }
        return var;
    }

    /** out[i] = b + Σ kept w_j τ_j / max(Σ kept w_j, floor): kept iff sign(w_j τ_j) = (Σ τ ≥ 0 ? +1 : −1). */
    public static float[] disjointMean(float[] base, List<float[]> taus, float[] w, float floor) {
        int n = base.length;
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            float sum = taus.getFirst()[i];
            for (int j = 1; j < taus.size(); j++) sum = sum + taus.get(j)[i];
            float s = sum >= 0 ? 1f : -1f;
            float acc = 0f, div = 0f;
            for (int j = 0; j < taus.size(); j++) {
                float v = w[j] * taus.get(j)[i];
                if (Math.signum(v) == s) {
                    acc = acc + v;
                    div = div + w[j];
                }
            }
            out[i] = base[i] + acc / (div < floor ? floor : div);
        }
        return out;
    }

    /**
     * The TIES combine ({@link ChunkOps#tiesCombine}): out[i] = b + λ·(Σ kept W_j (/ Σ kept w_j, 0 → 1)),
     * W_j = w_j τ_j kept iff sign(W_j) = (Σ W ≥ 0 ? +1 : −1); λ applied only when {@code scaled}.
     */
    public static float[] tiesCombine(float[] base, List<float[]> taus, float[] w, boolean normalize, boolean scaled, float lambda) {
        int n = base.length;
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            float sum = w[0] * taus.getFirst()[i];
            for (int j = 1; j < taus.size(); j++) sum = sum + w[j] * taus.get(j)[i];
            float s = sum >= 0 ? 1f : -1f;
            float acc = 0f, div = 0f;
            for (int j = 0; j < taus.size(); j++) {
                float v = w[j] * taus.get(j)[i];
                if (Math.signum(v) == s) {
                    acc = acc + v;
                    div = div + w[j];
                }
            }
            if (normalize) acc = acc / (div == 0f ? 1f : div);
            if (scaled) acc = lambda * acc;
            out[i] = base[i] + acc;
        }
        return out;
    }

    /** values[i] rounded into d and back: exactly what a stored tensor of d holds. */
    public static float[] representable(DType d, float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            float v = values[i];
            out[i] = switch (d) {
                // bf16: the high half of the float bits (a truncation keeps NaN payloads NaN: a quiet bit is in the high half)
                case BF16 -> Float.intBitsToFloat(Float.floatToRawIntBits(v) & 0xffff0000);
                // f16: a finite value beyond its range saturates to ±65504 (no infinity the data did not ask for)
                case F16 -> Float.isFinite(v) && Math.abs(v) > 65504f ? Math.copySign(65504f, v) : Float.float16ToFloat(Float.floatToFloat16(v));
                case F32, F64 -> v;
                default -> throw new IllegalArgumentException("not a float dtype: " + d);
            };
        }
        return out;
    }

    /** A stored tensor of dtype d holding {@code values} (each representable in d: {@link #representable}). */
    public static TensorView stored(Arena arena, String name, DType d, float[] values) {
        MemorySegment s = arena.allocate(Math.max(8, values.length * d.byteSize()), 8);
        for (int i = 0; i < values.length; i++) {
            float v = values[i];
            switch (d) {
                case BF16 -> s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(v) >>> 16));
                case F16 -> s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(v));
                case F32 -> s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
                case F64 -> s.setAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i, v);
                default -> throw new IllegalArgumentException("not a float dtype: " + d);
            }
        }
        return new TensorView(name, d, Shape.of(values.length), s.asSlice(0, values.length * d.byteSize()), "test");
    }

    /**
     * Gaussians over many scales with exact zeros of both signs, subnormals and repeats; with
     * {@code inf}, ±∞; with {@code nan}, NaNs of one payload (so no element meets two NaNs of
     * different payloads, whose winner x86 does not pin).
     */
    public static float[] values(long seed, int n, boolean inf, boolean nan) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (r.nextInt(40)) {
                case 0 -> 0f;
                case 1 -> -0f;
                case 2 -> inf ? Float.POSITIVE_INFINITY : 1f;
                case 3 -> inf ? Float.NEGATIVE_INFINITY : -1f;
                case 4 -> nan ? Float.intBitsToFloat(0x7fc50000) : 0.5f;
                case 5 -> Float.intBitsToFloat(r.nextInt(1, 0x800000) | (r.nextBoolean() ? 0x80000000 : 0));
                case 6 -> 3.0f;
                default -> (float) (r.nextGaussian() * Math.pow(2, r.nextInt(-20, 20)));
            };
        }
        return v;
    }
}
