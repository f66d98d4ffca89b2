package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.tensor.Tile;

/**
 * The sparsifications of mergekit's {@code sparsify.py}, each applied in place to one task vector
 * τ (a non-base model's tile after τ = θ − θ₀). All of them leave τ unchanged when density ≥ 1.
 */
final class Sparsify {
    private Sparsify() {}

    /** mergekit's {@code rescaled_masked_tensor} with the L1 norm: τ·(‖τ‖₁/‖τ̂‖₁) unless either is below 1e-7. */
    static void rescaleL1(Backend b, Tile t, double before) {
        double after = b.sumAbs(t);
        if (before < 1e-7 || after < 1e-7) return;
        b.scale(t, (float) (before / after), t);
    }

    /**
     * {@code magnitude}: keep the k = ⌊d·n⌋ largest |τ| (ties: lower index first). k = 0 keeps nothing
     * and says so (mergekit asserts instead).
     */
    static void magnitude(MergeContext ctx, MergeInputs in, int model, Tile t, double density, boolean rescale) {
        if (density >= 1) return;
        Backend b = ctx.backend();
        long n = t.size();
        // k = int(d * n)
        long k = (long) (density * n);
        if (k == 0) {
            ctx.note(in.tensor() + ": density " + density + " of " + n + " elements keeps nothing of model " + model
                    + "; its task vector is dropped for this tensor");
            b.keepRankRange(t, 0, 0);
            return;
        }
        double before = rescale ? b.sumAbs(t) : 0;
        // τ̂ = τ restricted to the ranks [0, k) of |τ|
        b.keepRankRange(t, 0, k);
        if (rescale) rescaleL1(b, t, before);
    }

    /**
     * {@code magnitude_outliers} (Model Breadcrumbs): drop the ⌊γ·n⌋ largest and then the smallest so
     * that ⌊d·n⌋ remain. Where ⌊γ·n⌋ = 0 mergekit's slice {@code [n_bot:-0]} is empty and zeroes the
     * whole vector; we keep the ⌊d·n⌋ largest instead (documented difference).
     */
    static void outliers(MergeContext ctx, MergeInputs in, int model, Tile t, double density, double gamma, boolean rescale) {
        if (density >= 1) return;
        Backend b = ctx.backend();
        long n = t.size();
        // target = int(d n), top = int(γ n), bot = n - target - top; bot < 0 moves the excess to top
        long target = (long) (density * n), top = (long) (gamma * n), bot = n - target - top;
        if (bot < 0) top += bot;
        if (target == 0) {
            ctx.note(in.tensor() + ": density " + density + " of " + n + " elements keeps nothing of model " + model
                    + "; its task vector is dropped for this tensor");
        }
        double before = rescale ? b.sumAbs(t) : 0;
        // keep the descending magnitude ranks [top, top + target)
        b.keepRankRange(t, top, top + target);
        if (rescale) rescaleL1(b, t, before);
    }

    /** {@code bernoulli} (DARE): keep each entry with probability d, then rescale by {@code mode}. */
    static void random(MergeContext ctx, MergeInputs in, int model, Tile t, double density, Backend.Rescale mode) {
        if (density >= 1) return;
        ctx.backend().dropRescale(t, (float) density, Philox.key(ctx.seed(), in.tensor(), model), mode);
    }

    /**
     * {@code della_magprune}: within each row (axis 1; a 1-D tensor is one row) the entry of magnitude
     * rank r (0 = largest, ties lower index first) is kept with probability
     * p = (d − ε) + 2ε·(len−1−r)/(len−1), i.e. d+ε for the largest and d−ε for the smallest; a row of
     * one element uses p = d (mergekit divides 0 by 0 there). Then the L1 rescale if asked.
     */
    static void della(MergeContext ctx, MergeInputs in, int model, Tile t, double density, double epsilon, boolean rescale) {
        if (density >= 1) return;
        if (density + epsilon >= 1 || density - epsilon <= 0) {
            throw new ConfigException(in.params().get(model).where() + ": della needs density ± epsilon inside (0, 1), got density "
                    + density + " and epsilon " + epsilon + " for tensor " + in.tensor() + "; lower epsilon");
        }
        Backend b = ctx.backend();
        Lanes lanes = Lanes.along(t.shape(), 1);
        Tile p = ctx.scratch(t.shape());
        try {
            b.laneRanks(t, lanes, p);
            long len = lanes.length();
            // p = (d + ε) − r · 2ε/(len − 1)
            float slope = len > 1 ? (float) (-2 * epsilon / (len - 1)) : 0f;
            float top = len > 1 ? (float) (density + epsilon) : (float) density;
            b.affine(p, slope, top, p);
            b.dropByProbability(t, p, Philox.key(ctx.seed(), in.tensor(), model),
                    rescale ? Backend.Rescale.L1 : Backend.Rescale.NONE);
        } finally {
            ctx.release(p);
        }
    }
}
