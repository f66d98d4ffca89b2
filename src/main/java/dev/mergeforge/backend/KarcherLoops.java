package dev.mergeforge.backend;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The reference loops of Karcher's fused chunk ops ({@link ChunkOps#karcherMean},
 * {@link ChunkOps#karcherTangent}; docs/methods.md, "karcher"): each is the chain of separate float32
 * ops the method ran before, per element in the same order — every product and sum rounded, no FMA —
 * so one sweep of the chunk gives the bits those ops give. The Java chunk ops run them, the CUDA ops
 * on a chunk's host copy; native/src/karcher.c and kernels/karcher.cu follow them bit for bit.
 */
public final class KarcherLoops {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    /**
     * The weight 1 of weightedSum(x, y; 1, α), read from an array so the JIT cannot fold 1·x into x:
     * the product is a real one, as in weightedSum (it quiets a signalling NaN).
     */
    private static final float[] ONE = {1f};

    private KarcherLoops() {}

    /**
     * units[p][i] = scales[p]·xs[p][i] (scale); u[i] = ((w0·units0[i]) + (w1·units1[i])) + … left to
     * right (weightedSum); then u[i] = f·u[i] (scale). No units: not written.
     */
    public static void mean(Parallel par, List<Tile> xs, float[] scales, List<Tile> units, float[] w, float f, Tile u) {
        checkMean(xs, scales, units, w, u);
        int k = xs.size();
        boolean keep = !units.isEmpty();
        MemorySegment[] in = new MemorySegment[k], un = new MemorySegment[k];
        for (int p = 0; p < k; p++) { in[p] = xs.get(p).data(); un[p] = keep ? units.get(p).data() : null; }
        MemorySegment o = u.data();
        par.forRange(u.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float acc = 0f;
                for (int p = 0; p < k; p++) {
                    float up = scales[p] * in[p].getAtIndex(F, i);
                    if (keep) un[p].setAtIndex(F, i, up);
                    float prod = w[p] * up;
                    acc = p == 0 ? prod : acc + prod;
                }
                o.setAtIndex(F, i, f * acc);
            }
        });
    }

    /**
     * t[i] = +0.0 (fill); then for each p in order: tmp = (1·units[p][i]) + (minusCos[p]·u[i]);
     * t[i] = (1·t[i]) + (coef[p]·tmp) (two weightedSum calls).
     */
    public static void tangent(Parallel par, List<Tile> units, Tile u, float[] minusCos, float[] coef, Tile t) {
        checkTangent(units, u, minusCos, coef, t);
        int k = units.size();
        MemorySegment[] un = new MemorySegment[k];
        for (int p = 0; p < k; p++) un[p] = units.get(p).data();
        MemorySegment a = u.data(), o = t.data();
        par.forRange(t.size(), (lo, hi) -> {
            float one = ONE[0];
            for (long i = lo; i < hi; i++) {
                float ui = a.getAtIndex(F, i), acc = 0f;
                for (int p = 0; p < k; p++) {
                    float tmp = (one * un[p].getAtIndex(F, i)) + (minusCos[p] * ui);
                    acc = (one * acc) + (coef[p] * tmp);
                }
                o.setAtIndex(F, i, acc);
            }
        });
    }

    /** {@link #mean} (no units kept) then {@link #tangent} of units terms[j], per element in one sweep: only t is written. */
    public static void meanTangent(Parallel par, List<Tile> xs, float[] scales, float[] w, float f, int[] terms, float[] minusCos, float[] coef, Tile t) {
        checkMeanTangent(xs, scales, w, terms, minusCos, coef, t);
        int k = xs.size();
        MemorySegment[] in = new MemorySegment[k];
        for (int p = 0; p < k; p++) in[p] = xs.get(p).data();
        MemorySegment o = t.data();
        par.forRange(t.size(), (lo, hi) -> {
            float one = ONE[0];
            float[] v = new float[k];
            for (long i = lo; i < hi; i++) {
                float acc = 0f;
                for (int p = 0; p < k; p++) {
                    v[p] = scales[p] * in[p].getAtIndex(F, i);
                    float prod = w[p] * v[p];
                    acc = p == 0 ? prod : acc + prod;
                }
                float ui = f * acc, ti = 0f;
                for (int j = 0; j < terms.length; j++) {
                    float tmp = (one * v[terms[j]]) + (minusCos[j] * ui);
                    ti = (one * ti) + (coef[j] * tmp);
                }
                o.setAtIndex(F, i, ti);
            }
        });
    }

    /** {@link ChunkOps#karcherMeanTangent}'s arguments, checked the same on every backend. */
    public static void checkMeanTangent(List<Tile> xs, float[] scales, float[] w, int[] terms, float[] minusCos, float[] coef, Tile t) {
        checkMean(xs, scales, List.of(), w, t);
        if (minusCos.length != terms.length || coef.length != terms.length) {
            throw new IllegalArgumentException("karcherMeanTangent needs one −cos and one coefficient per term, got " + terms.length + " terms, "
                    + minusCos.length + " −cos and " + coef.length + " coefficients");
        }
        for (int p : terms) if (p < 0 || p >= xs.size()) throw new IllegalArgumentException("term " + p + " of " + xs.size() + " inputs");
    }

    /** {@link ChunkOps#karcherMean}'s arguments, checked the same on every backend. */
    public static void checkMean(List<Tile> xs, float[] scales, List<Tile> units, float[] w, Tile u) {
        int k = xs.size();
        if (k == 0 || scales.length != k || (units.size() != k && !units.isEmpty()) || w.length != k) {
            throw new IllegalArgumentException("karcherMean needs one scale, weight and (unless none) unit per input, got " + k + " inputs, "
                    + scales.length + " scales, " + units.size() + " units and " + w.length + " weights");
        }
        for (Tile x : xs) sameSize(x, u);
        for (Tile x : units) sameSize(x, u);
    }

    /** {@link ChunkOps#karcherTangent}'s arguments, checked the same on every backend. */
    public static void checkTangent(List<Tile> units, Tile u, float[] minusCos, float[] coef, Tile t) {
        int k = units.size();
        if (minusCos.length != k || coef.length != k) {
            throw new IllegalArgumentException("karcherTangent needs one −cos and one coefficient per unit, got " + k + " units, "
                    + minusCos.length + " −cos and " + coef.length + " coefficients");
        }
        sameSize(u, t);
        for (Tile x : units) sameSize(x, t);
    }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }
}
