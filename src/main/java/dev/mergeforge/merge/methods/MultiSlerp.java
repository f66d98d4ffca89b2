package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * Multi-SLERP (C. Goddard, "multislerp"; mergekit's {@code multislerp.py}): barycentric interpolation
 * on the hypersphere of the flattened tensors (task vectors when a base is given). With weights
 * w (divided by Σw when {@code normalize_weights}): u_i = x_i/(‖x_i‖+eps), m = Σ w_i u_i normalised,
 * tangents t_i = u_i − (u_i·m) m, T = Σ w_i t_i, out = (m cos‖T‖' + T sin‖T‖'/‖T‖')·Σ w_i‖x_i‖ with
 * ‖T‖' = ‖T‖ + eps, plus the base. When ‖Σ w_i u_i‖ &lt; eps two models fall back to Σ w_i x_i and more
 * are an error, as in mergekit. A single model is returned unchanged. Differences: the mean is formed
 * as Σ (w_i/(‖x_i‖+eps)) x_i in one pass (mergekit: units first), a float32 rounding difference.
 */
public record MultiSlerp(boolean normalizeWeights, double eps) implements MergeMethod {

    public static final MethodSpec SPEC = new MethodSpec("multislerp",
            "barycentric interpolation of several models on the hypersphere",
            "https://goddard.blog/posts/multislerp-wow-what-a-cool-idea", MethodSpec.BaseUse.OPTIONAL, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.flag("normalize_weights", true, "divide the weights by their sum"),
                    ParamSpec.number("eps", 1e-8, 0, Double.NaN, false, "small constant for numerical stability")),
            List.of(Specs.WEIGHT),
            g -> new MultiSlerp(g.flag("normalize_weights", true), g.number("eps", 1e-8)));

    public MultiSlerp {
        if (!(eps >= 0) || !Double.isFinite(eps)) throw new IllegalArgumentException("eps must be >= 0, got " + eps);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Backend b = ctx.backend();
        int[] idx = in.nonBase();
        if (idx.length == 1) { b.scale(in.models().get(idx[0]), 1f, out); return; }
        Tile base = in.base();
        int n = idx.length;
        List<Tile> x = new ArrayList<>(n);
        for (int j : idx) {
            Tile m = in.models().get(j);
            // x_i = θ_i − θ₀ (with a base)
            if (base != null) b.sub(m, base, m);
            x.add(m);
        }
        float[] w = Weights.of(in, idx, "weight");
        if (normalizeWeights) {
            // w = w / Σw
            float sum = Weights.sum(w);
            for (int i = 0; i < n; i++) w[i] = w[i] / sum;
        }
        double[] norms = new double[n];
        float[] wu = new float[n];
        for (int i = 0; i < n; i++) {
            norms[i] = Math.sqrt(b.sumSquares(x.get(i)));
            wu[i] = (float) (w[i] / (norms[i] + eps));
        }
        // m = Σ w_i x_i/(‖x_i‖+eps)
        b.weightedSum(x, wu, out);
        double meanNorm = Math.sqrt(b.sumSquares(out));
        if (meanNorm < eps) {
            if (n != 2) {
                throw new ConfigException("multislerp: the weighted mean of the unit tensors of " + in.tensor()
                        + " is zero (antipodal models with balancing weights); change the weights");
            }
            // fallback: Σ w_i x_i (+ θ₀)
            b.weightedSum(x, w, out);
            if (base != null) b.add(base, out, out);
            return;
        }
        // m = m / ‖m‖
        b.scale(out, (float) (1 / meanNorm), out);
        for (int i = 0; i < n; i++) {
            Tile u = x.get(i);
            // u_i = x_i / (‖x_i‖ + eps)
            b.scale(u, (float) (1 / (norms[i] + eps)), u);
            // t_i = u_i − (u_i·m) m
            float d = (float) b.dot(u, out);
            b.axpy(-d, out, u);
        }
        // T = Σ w_i t_i  (into the first tangent's tile)
        Tile tangent = x.get(0);
        b.weightedSum(x, w, tangent);
        double tn = Math.sqrt(b.sumSquares(tangent)) + eps;
        // r = m cos‖T‖ + T sin‖T‖/‖T‖
        b.scale(out, (float) Math.cos(tn), out);
        b.axpy((float) (Math.sin(tn) / tn), tangent, out);
        // r = r · Σ w_i ‖x_i‖
        double avgNorm = 0;
        for (int i = 0; i < n; i++) avgNorm += norms[i] * w[i];
        b.scale(out, (float) avgNorm, out);
        if (base != null) b.add(base, out, out);
    }
}
