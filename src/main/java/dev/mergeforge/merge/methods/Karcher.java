package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * Karcher (Riemannian) mean of the flattened tensors on the unit sphere (Karcher 1977; mergekit's
 * {@code karcher.py}, arXiv 2603.04972), equal weights 1/N, then scaled by the mean of the norms.
 * Units u_i = x_i/‖x_i‖ (only those with ‖x_i‖ &gt; tol take part), start from the normalised
 * weighted mean, then up to {@code max_iter} steps of u ← cos‖T‖ u + sin‖T‖ T/‖T‖ with
 * T = Σ a_i θ_i/sin θ_i (u_i − cos θ_i u), θ_i = acos(clamp(u·u_i)) (terms with θ_i &lt; tol skipped),
 * stopping when ‖T‖ &lt; tol; out = (Σ_i ‖x_i‖/N)·u. As in mergekit every input tensor takes part:
 * a base_model that the config does not list among the models is appended as the last input.
 * Per-model weights are not a parameter of karcher in mergekit and are rejected here.
 */
public record Karcher(int maxIter, double tol) implements MergeMethod {

    public static final MethodSpec SPEC = new MethodSpec("karcher",
            "Riemannian (Karcher) mean of the models on the sphere, scaled by their mean norm",
            "https://en.wikipedia.org/wiki/Karcher_mean", MethodSpec.BaseUse.OPTIONAL, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.number("max_iter", 10.0, 0, Double.NaN, false, "most fixed-point iterations"),
                    ParamSpec.number("tol", 1e-5, 0, Double.NaN, false, "convergence tolerance")),
            List.of(),
            g -> new Karcher((int) g.number("max_iter", 10), g.number("tol", 1e-5)));

    public Karcher {
        if (maxIter < 0) throw new IllegalArgumentException("max_iter must be >= 0, got " + maxIter);
        if (!(tol >= 0) || !Double.isFinite(tol)) throw new IllegalArgumentException("tol must be >= 0, got " + tol);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Backend b = ctx.backend();
        List<Tile> inputs = new ArrayList<>(in.models());
        boolean baseAppended = in.base() != null && in.baseIndex() < 0;
        if (baseAppended) inputs.add(in.base());
        int n = inputs.size();
        if (n == 1) { b.scale(inputs.get(0), 1f, out); return; }
        List<Tile> scratch = new ArrayList<>();
        try {
            double alpha = 1.0 / n;
            double[] norms = new double[n];
            List<Tile> units = new ArrayList<>();
            List<Double> alphas = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                Tile x = inputs.get(i);
                norms[i] = Math.sqrt(b.sumSquares(x));
                if (!(norms[i] > tol)) continue;
                // u_i = x_i / ‖x_i‖  (the base tile is never written: its unit goes to scratch)
                boolean readOnly = x == in.base() || (in.baseIndex() >= 0 && x == in.models().get(in.baseIndex()));
                Tile u = readOnly ? borrow(ctx, out, scratch) : x;
                b.scale(x, (float) (1 / norms[i]), u);
                units.add(u);
                alphas.add(alpha);
            }
            if (units.isEmpty()) { b.fill(out, 0f); return; }
            double asum = 0;
            for (double a : alphas) asum += a;
            float[] na = new float[units.size()];
            for (int i = 0; i < na.length; i++) na[i] = (float) (alphas.get(i) / asum);
            // u = Σ a_i u_i, normalised (or the first unit when that is ~0)
            Tile u = out;
            b.weightedSum(units, na, u);
            double normU = Math.sqrt(b.sumSquares(u));
            if (normU < tol) b.scale(units.get(0), 1f, u);
            else b.scale(u, (float) (1 / normU), u);
            Tile t = borrow(ctx, out, scratch), tmp = borrow(ctx, out, scratch);
            for (int it = 0; it < maxIter; it++) {
                // T = Σ a_i θ_i/sin θ_i · (u_i − cos θ_i · u)
                b.fill(t, 0f);
                for (int i = 0; i < units.size(); i++) {
                    float dot = (float) Math.max(-1.0, Math.min(1.0, (float) b.dot(u, units.get(i))));
                    float theta = (float) Math.acos(dot);
                    if (theta < tol) continue;
                    float c = (float) (na[i] * (theta / Math.sin(theta)));
                    b.scale(units.get(i), 1f, tmp);
                    b.axpy(-dot, u, tmp);
                    b.axpy(c, tmp, t);
                }
                double normT = Math.sqrt(b.sumSquares(t));
                if (normT < tol) break;
                // u = cos‖T‖ u + sin‖T‖ T/‖T‖, renormalised
                b.scale(u, (float) Math.cos(normT), u);
                b.axpy((float) (Math.sin(normT) / normT), t, u);
                double un = Math.sqrt(b.sumSquares(u));
                if (un > tol) b.scale(u, (float) (1 / un), u);
            }
            // out = (Σ a_i ‖x_i‖) u
            double s = 0;
            for (double nrm : norms) s += alpha * nrm;
            b.scale(u, (float) s, out);
        } finally {
            for (Tile s : scratch) ctx.release(s);
        }
    }

    private static Tile borrow(MergeContext ctx, Tile like, List<Tile> owned) {
        Tile t = ctx.scratch(like.shape());
        owned.add(t);
        return t;
    }
}
