package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
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
 * Per-model weights are not a parameter of karcher in mergekit and are rejected here. Runs as passes
 * over chunks ({@link KarcherPasses}, the same bits); {@code merge} is the whole-tensor oracle.
 */
public record Karcher(int maxIter, double tol) implements ChunkedMethod {

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
            double[] norms = new double[n];
            List<Tile> units = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                Tile x = inputs.get(i);
                norms[i] = Math.sqrt(b.sumSquares(x));
                if (!(norms[i] > tol)) continue;
                // u_i = x_i / ‖x_i‖  (the base tile is never written: its unit goes to scratch)
                boolean readOnly = x == in.base() || (in.baseIndex() >= 0 && x == in.models().get(in.baseIndex()));
                Tile u = readOnly ? borrow(ctx, out, scratch) : x;
                b.scale(x, (float) (1 / norms[i]), u);
                units.add(u);
            }
            if (units.isEmpty()) { b.fill(out, 0f); return; }
            float[] na = unitWeights(n, units.size());
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
                    Term term = term(b.dot(u, units.get(i)), na[i]);
                    if (term.skip()) continue;
                    b.scale(units.get(i), 1f, tmp);
                    b.axpy(-term.cos(), u, tmp);
                    b.axpy(term.coef(), tmp, t);
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
            b.scale(u, (float) meanNorm(norms), out);
        } finally {
            for (Tile s : scratch) ctx.release(s);
        }
    }

    /** The passes over chunks: see {@link KarcherPasses}. */
    @Override
    public ChunkProgram program(TensorSetup in) { return KarcherPasses.program(this, in); }

    /** The weights a_i of the units: 1/N each, divided by their sum over the units taking part, in float32. */
    static float[] unitWeights(int n, int units) {
        double alpha = 1.0 / n, asum = 0;
        for (int i = 0; i < units; i++) asum += alpha;
        float[] na = new float[units];
        for (int i = 0; i < units; i++) na[i] = (float) (alpha / asum);
        return na;
    }

    /** Σ_i ‖x_i‖/N over every input, in input order. */
    static double meanNorm(double[] norms) {
        double alpha = 1.0 / norms.length, s = 0;
        for (double nrm : norms) s += alpha * nrm;
        return s;
    }

    /**
     * One unit's term of the tangent T from its dot with the iterate: cos θ_i = clamp(u·u_i) in
     * float32, θ_i = acos, the coefficient a_i θ_i/sin θ_i; skipped when θ_i &lt; tol.
     */
    Term term(double dot, float a) {
        float cos = (float) Math.max(-1.0, Math.min(1.0, (float) dot));
        float theta = (float) Math.acos(cos);
        return new Term(cos, (float) (a * (theta / Math.sin(theta))), theta < tol);
    }

    /** A unit's term of T: its clamped cosine, its coefficient, whether it is left out. */
    record Term(float cos, float coef, boolean skip) {}

    private static Tile borrow(MergeContext ctx, Tile like, List<Tile> owned) {
        Tile t = ctx.scratch(like.shape());
        owned.add(t);
        return t;
    }
}
