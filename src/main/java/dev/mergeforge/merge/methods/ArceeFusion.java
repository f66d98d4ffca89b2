package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
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
 */
public record ArceeFusion() implements MergeMethod {
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
            importance(base, other, imp);
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

    /** imp = |θ₁ − θ₀|·KL(p ‖ q) per row, p = softmax(θ₁ row) + ε, q = softmax(θ₀ row) + ε. */
    private static void importance(Tile base, Tile other, Tile imp) {
        long rows = imp.shape().rows(), cols = imp.shape().cols();
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
