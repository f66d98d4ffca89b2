package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * The shared skeleton of mergekit's "generalized task arithmetic" methods
 * ({@code generalized_task_arithmetic.py}): task vectors of the non-base models, an optional
 * sparsification of each, then either a weighted sum or TIES sign election with a disjoint sum,
 * optional normalisation, λ, and the base added back.
 */
final class TaskVectors {
    private TaskVectors() {}

    /** Sparsifies model {@code model}'s task vector {@code tv} in place. */
    @FunctionalInterface
    interface Sparsifier { void apply(MergeContext ctx, MergeInputs in, int model, Tile tv); }

    static final Sparsifier NONE = (ctx, in, model, tv) -> { };

    static Tile base(MergeInputs in, String method) {
        if (in.base() == null) {
            throw new ConfigException(method + " needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        }
        return in.base();
    }

    /** τ_j = θ_j − θ₀ written over each non-base model tile (the base tile is never written). */
    static List<Tile> deltas(MergeContext ctx, MergeInputs in, int[] idx, Tile base) {
        List<Tile> tvs = new ArrayList<>(idx.length);
        for (int j : idx) {
            Tile m = in.models().get(j);
            // τ_j = θ_j − θ₀
            ctx.backend().sub(m, base, m);
            tvs.add(m);
        }
        return tvs;
    }

    /** The factor that normalises Σ w_j τ_j: 1 / Σ w_j, or 1 when |Σ w_j| &lt; 1e-8 (mergekit's rule). */
    static float normalizer(float[] w) {
        float div = Weights.sum(w);
        if (Math.abs(div) < 1e-8f) div = 1f;
        return 1f / div;
    }

    /**
     * The whole method: out = θ₀ + λ·merge(sparsify(τ_j)) where merge is Σ w_j τ̂_j (optionally / Σw) or,
     * with {@code consensus}, the TIES disjoint sum of W_j = w_j τ̂_j (optionally / Σ kept w).
     */
    static void merge(MergeContext ctx, MergeInputs in, Tile out, String method, Sparsifier sparsifier,
                      boolean consensus, boolean normalize, double lambda) {
        Backend b = ctx.backend();
        Tile base = base(in, method);
        int[] idx = in.nonBase();
        if (idx.length == 0) {
            // no task vectors: the base itself
            b.scale(base, 1f, out);
            return;
        }
        float[] w = Weights.of(in, idx, "weight");
        List<Tile> tvs = deltas(ctx, in, idx, base);
        for (int k = 0; k < idx.length; k++) sparsifier.apply(ctx, in, idx[k], tvs.get(k));
        if (consensus) {
            Tile sign = ctx.scratch(out.shape());
            try {
                // W_j = w_j · τ̂_j
                for (int k = 0; k < idx.length; k++) b.scale(tvs.get(k), w[k], tvs.get(k));
                // s = sign(Σ_j W_j), 0 → +
                b.electSign(tvs, sign);
                // Δ = Σ_j W_j [sign W_j = s]  (/ Σ_j w_j [sign W_j = s], 0 → 1)
                b.disjointMerge(tvs, w, sign, normalize, out);
            } finally {
                ctx.release(sign);
            }
        } else {
            // Δ = Σ_j w_j τ̂_j
            b.weightedSum(tvs, w, out);
            // Δ = Δ / Σ_j w_j   (|Σw| < 1e-8 → 1)
            if (normalize) b.scale(out, normalizer(w), out);
        }
        // Δ = λ Δ
        if (lambda != 1) b.scale(out, (float) lambda, out);
        // θ = θ₀ + Δ
        b.add(base, out, out);
    }
}
