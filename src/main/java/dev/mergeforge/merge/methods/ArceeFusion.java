package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Arcee Fusion (Arcee AI; mergekit 0.1.4's {@code arcee_fusion.py}): take the other model's value
 * only where it matters most. Per row (last axis; a 1-D tensor is one row) the KL divergence
 * KL(softmax(θ₁) + ε ‖ softmax(θ₀) + ε), ε = 1e-8, weights the change: importance =
 * |θ₁ − θ₀|·KL_row. Threshold = median + 1.5·(Q3 − Q1) of all importances, where quantile q is
 * the element at sorted index ⌊q·(n−1)⌋ (mergekit's convention, no interpolation); out =
 * θ₀ + (θ₁ − θ₀)·[importance ≥ threshold]. The quantiles are exact (an O(n) radix select):
 * mergekit estimates them from 1M randomly sampled elements when a tensor has more. Softmax and
 * KL are computed in double, the importance rounded to float32; the rest is float32 as mergekit.
 * As passes over chunks of whole rows ({@link #program}): the quantiles' high-bit histogram, their
 * low bits, then the combine; each pass recomputes the chunk's importance.
 */
public record ArceeFusion() implements ChunkedMethod {
    static final double EPS = 1e-8;

    public static final MethodSpec SPEC = new MethodSpec("arcee_fusion",
            "keep the other model's values whose change, weighted by the row's KL divergence, is an upper outlier",
            "https://arcee.ai", MethodSpec.BaseUse.REQUIRED, 1, 1, List.of(), List.of(), g -> new ArceeFusion());

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Tile base = TaskVectors.base(in, "arcee_fusion");
        int[] idx = in.nonBase();
        if (idx.length == 0) { ctx.backend().scale(base, 1f, out); return; }
        Tile other = in.models().get(idx[0]);
        Tile imp = ctx.scratch(out.shape());
        try {
            // the loops below read and write tile memory themselves, not through the backend's ops
            ctx.hostAccess(List.of(base, other, imp, out));
            importance(base, other, imp, out.shape().cols());
            long n = imp.size();
            float median = FloatSelect.kthSmallest(imp, quantileIndex(0.5, n));
            float q1 = FloatSelect.kthSmallest(imp, quantileIndex(0.25, n));
            float q3 = FloatSelect.kthSmallest(imp, quantileIndex(0.75, n));
            // threshold = median + 1.5·(Q3 − Q1), in float32
            float iqr = q3 - q1;
            float threshold = median + 1.5f * iqr;
            for (long e = 0; e < n; e++) {
                float b = base.get(e);
                // θ = θ₀ + (θ₁ − θ₀)·mask
                out.set(e, b + (other.get(e) - b) * (imp.get(e) >= threshold ? 1f : 0f));
            }
        } finally {
            ctx.release(imp);
        }
    }

    /** mergekit's quantile index: ⌊q·(n−1)⌋ (exact in double for the q used here). */
    static long quantileIndex(double q, long n) { return (long) (q * (n - 1)); }

    /**
     * The whole-tensor path's maths on chunks holding whole rows (a 1-D tensor is one row, so one
     * chunk): pass 1 histograms the high bits of the importances' order keys, pass 2 the low bits at
     * Q1, the median and Q3 ({@link FloatRanks}, the exact values {@link FloatSelect} finds), then the
     * combine masks. Same bytes as {@link #merge} on any backend: every step is the same host loop.
     */
    @Override
    public ChunkProgram program(TensorSetup in) {
        if (!in.hasBase()) throw new ConfigException("arcee_fusion needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        int[] idx = in.nonBase();
        if (idx.length == 0) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.base(), 1f, out));
        int other = idx[0];
        long n = in.numel(), cols = Math.max(1, in.shape().cols());
        FloatRanks q = new FloatRanks(n, quantileIndex(0.25, n), quantileIndex(0.5, n), quantileIndex(0.75, n));
        float[] threshold = new float[1];
        ChunkProgram.Pass high = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }
            @Override public void chunk(ChunkOps ops, Chunk c) {
                ops.onHost(List.of(c.base(), c.model(other)), List.of(c.scratch(0)), () -> q.high(importance(c, other, cols), c.size()));
            }
            @Override public void end() { q.endHigh(); }
        };
        ChunkProgram.Pass low = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }
            @Override public void chunk(ChunkOps ops, Chunk c) {
                ops.onHost(List.of(c.base(), c.model(other)), List.of(c.scratch(0)), () -> q.low(importance(c, other, cols), c.size()));
            }
            @Override public void end() {
                q.endLow();
                // threshold = median + 1.5·(Q3 − Q1), in float32
                float iqr = q.value(2) - q.value(0);
                threshold[0] = q.value(1) + 1.5f * iqr;
            }
        };
        // every step is a host loop over the chunk's memory, so each runs inside ops.onHost
        return new ChunkProgram(cols, 1, List.of(high, low), (ops, c, out) -> ops.onHost(List.of(c.base(), c.model(other)), List.of(c.scratch(0), out), () -> {
            Tile imp = importance(c, other, cols), b = c.base(), o = c.model(other);
            float t = threshold[0];
            for (long e = 0, m = c.size(); e < m; e++) {
                float be = b.get(e);
                // θ = θ₀ + (θ₁ − θ₀)·mask
                out.set(e, be + (o.get(e) - be) * (imp.get(e) >= t ? 1f : 0f));
            }
        }));
    }

    /** The chunk's importances, in its scratch tile. */
    private static Tile importance(Chunk c, int other, long cols) {
        Tile imp = c.scratch(0);
        importance(c.base(), c.model(other), imp, cols);
        return imp;
    }

    /** imp = |θ₁ − θ₀|·KL(p ‖ q) per row of {@code cols} elements, p = softmax(θ₁ row) + ε, q = softmax(θ₀ row) + ε. */
    private static void importance(Tile base, Tile other, Tile imp, long cols) {
        long rows = imp.size() / cols;
        for (long r = 0; r < rows; r++) {
            long o = r * cols;
            double mb = Double.NEGATIVE_INFINITY, mo = Double.NEGATIVE_INFINITY;
            for (long j = 0; j < cols; j++) { mb = Math.max(mb, base.get(o + j)); mo = Math.max(mo, other.get(o + j)); }
            double sb = 0, so = 0;
            for (long j = 0; j < cols; j++) { sb += Math.exp(base.get(o + j) - mb); so += Math.exp(other.get(o + j) - mo); }
            // KL = Σ p·log(p/q)
            double kl = 0;
            for (long j = 0; j < cols; j++) {
                double p = Math.exp(other.get(o + j) - mo) / so + EPS, q = Math.exp(base.get(o + j) - mb) / sb + EPS;
                kl += p * Math.log(p / q);
            }
            float klf = (float) kl;
            for (long j = 0; j < cols; j++) imp.set(o + j, Math.abs(other.get(o + j) - base.get(o + j)) * klf);
        }
    }
}
