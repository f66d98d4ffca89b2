package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * SCE — select, calculate, erase (Wan et al. 2024, FuseChat, arXiv 2408.07990), pinned to mergekit's
 * {@code sce.py}. Task vectors τ_i = θ_i − θ₀. Select: with {@code select_topk} = k &lt; 1 keep only the
 * ⌊k·nnz⌋ positions of largest variance of τ across the models (nnz = positions of non-zero
 * variance; none when that is 0). Calculate: w_i = mean(τ_i²) / Σ_j mean(τ_j²) (1/N when the sum is
 * below 1e-6). Erase: s = sign(Σ τ_i) (0 → +), keep τ_i where sign(τ_i) = s. Out =
 * θ₀ + Σ kept w_i τ_i / max(Σ kept w_i, 1e-6). Ties in variance keep the lower index (torch.topk leaves
 * them unspecified); the variance is ranked without its 1/N factor, which does not change the order.
 */
public record Sce(double selectTopk) implements MergeMethod {

    public static final MethodSpec SPEC = new MethodSpec("sce",
            "select high-variance positions, weight task vectors by mean square, erase minority signs",
            "https://arxiv.org/abs/2408.07990", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK,
                    ParamSpec.number("select_topk", 1.0, 0, 1, false, "fraction of positions of highest variance kept; 1 keeps all")),
            List.of(),
            g -> new Sce(g.number("select_topk", 1.0)));

    public Sce {
        if (!(selectTopk >= 0 && selectTopk <= 1)) throw new IllegalArgumentException("select_topk must be in [0, 1], got " + selectTopk);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Backend b = ctx.backend();
        Tile base = TaskVectors.base(in, "sce");
        int[] idx = in.nonBase();
        if (idx.length == 0) { b.scale(base, 1f, out); return; }
        int n = idx.length;
        List<Tile> tvs = TaskVectors.deltas(ctx, in, idx, base);
        Tile work = ctx.scratch(out.shape());
        try {
            if (selectTopk < 1) select(ctx, tvs, work, out);
            // w_i = mean(τ_i²) / Σ_j mean(τ_j²)
            double[] ms = new double[n];
            double sum = 0;
            for (int i = 0; i < n; i++) {
                ms[i] = b.sumSquares(tvs.get(i)) / out.size();
                sum += ms[i];
            }
            float[] w = new float[n];
            for (int i = 0; i < n; i++) w[i] = Math.abs(sum) < 1e-6 ? (float) (1.0 / n) : (float) (ms[i] / sum);
            // s = sign(Σ τ_i)
            b.electSign(tvs, work);
            // W_i = w_i τ_i
            for (int i = 0; i < n; i++) b.scale(tvs.get(i), w[i], tvs.get(i));
            // Δ = Σ kept W_i / max(Σ kept w_i, 1e-6)
            b.disjointMerge(tvs, w, work, false, out);
            Tile div = tvs.getFirst();
            b.disjointDivisor(tvs, w, work, div);
            b.clamp(div, 1e-6f, Float.POSITIVE_INFINITY, div);
            b.div(out, div, out);
            // θ = θ₀ + Δ
            b.add(base, out, out);
        } finally {
            ctx.release(work);
        }
    }

    /** Zeroes, in every task vector, the positions outside the top ⌊k·nnz⌋ variances (var and mean are free tiles). */
    private void select(MergeContext ctx, List<Tile> tvs, Tile var, Tile mean) {
        Backend b = ctx.backend();
        int n = tvs.size();
        float[] ones = new float[n];
        java.util.Arrays.fill(ones, 1f);
        // μ = Σ τ_i / N
        b.weightedSum(tvs, ones, mean);
        b.scale(mean, 1f / n, mean);
        Tile d = ctx.scratch(var.shape());
        try {
            // N·var = Σ (τ_i − μ)²
            b.fill(var, 0f);
            for (Tile tv : tvs) {
                b.sub(tv, mean, d);
                b.mul(d, d, d);
                b.add(var, d, var);
            }
        } finally {
            ctx.release(d);
        }
        // k = ⌊select_topk · nnz(var)⌋ with the product in float32, as torch computes int(count * density)
        long k = (long) ((float) b.countNonZero(var) * (float) selectTopk);
        if (k == 0) {
            for (Tile tv : tvs) b.fill(tv, 0f);
            return;
        }
        // keep τ_i only at the k largest variances
        b.keepRankRange(var, 0, k);
        for (Tile tv : tvs) b.keepWhereNonZero(tv, var, tv);
    }
}
