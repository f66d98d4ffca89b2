package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.SphereSteps;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
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
 * Runs as passes over chunks ({@link #program}, the same bits); {@code merge} is the whole-tensor oracle.
 */
public record MultiSlerp(boolean normalizeWeights, double eps) implements ChunkedMethod {

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
        float[] w = weights(in.params(), idx);
        double[] norms = new double[n];
        for (int i = 0; i < n; i++) norms[i] = Math.sqrt(b.sumSquares(x.get(i)));
        float[] wu = unitWeights(w, norms);
        // m = Σ w_i x_i/(‖x_i‖+eps)
        b.weightedSum(x, wu, out);
        double meanNorm = Math.sqrt(b.sumSquares(out));
        if (degenerate(meanNorm, n, in.tensor())) {
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
            b.scale(u, unitScale(norms[i]), u);
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
        b.scale(out, (float) weightedNorm(norms, w), out);
        if (base != null) b.add(base, out, out);
    }

    /** The weights w of the models idx, divided by Σw (float32, left to right) when normalize_weights. */
    private float[] weights(List<Params> params, int[] idx) {
        float[] w = Weights.of(params, idx, "weight");
        if (normalizeWeights) {
            // w = w / Σw
            float sum = Weights.sum(w);
            for (int i = 0; i < w.length; i++) w[i] = w[i] / sum;
        }
        return w;
    }

    /** The factor 1/(‖x_i‖+eps) that makes x_i a unit vector. */
    private float unitScale(double norm) { return (float) (1 / (norm + eps)); }

    /** w_i/(‖x_i‖+eps): the weights of the x_i in the unnormalised mean of the units. */
    private float[] unitWeights(float[] w, double[] norms) {
        float[] wu = new float[w.length];
        for (int i = 0; i < w.length; i++) wu[i] = (float) (w[i] / (norms[i] + eps));
        return wu;
    }

    /** Σ w_i ‖x_i‖, the norm the result is scaled to. */
    private static double weightedNorm(double[] norms, float[] w) {
        double s = 0;
        for (int i = 0; i < norms.length; i++) s += norms[i] * w[i];
        return s;
    }

    /** Whether the mean of the units is ~0: two models then fall back to Σ w_i x_i; more are a config error. */
    private boolean degenerate(double meanNorm, int n, String tensor) {
        if (!(meanNorm < eps)) return false;
        if (n != 2) {
            throw new ConfigException("multislerp: the weighted mean of the unit tensors of " + tensor
                    + " is zero (antipodal models with balancing weights); change the weights");
        }
        return true;
    }

    /**
     * The same maths as passes over chunks: ‖x_i‖; ‖Σ w_i x_i/(‖x_i‖+eps)‖; the dots u_i·m; ‖T‖; then
     * the combine. No pass keeps a whole-tensor vector: each recomputes its chunk of m, the u_i and T
     * from the chunk's inputs with the scalars found so far, by the ops of {@code merge} in its order —
     * those after the norms in one sweep of the chunk ({@link ChunkOps#sphere}, the same bits as the
     * separate ops; docs/methods.md, "multislerp"). A tensor of one chunk ends from the tiles the ‖T‖
     * pass (or, falling back, the mean's pass) left.
     */
    @Override
    public ChunkProgram program(TensorSetup in) {
        int[] idx = in.nonBase();
        if (idx.length == 1) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.model(idx[0]), 1f, out));
        int n = idx.length;
        boolean hasBase = in.hasBase();
        float[] w = weights(in.params(), idx);
        double[] norms = new double[n];
        float[] wu = new float[n], unit = new float[n], dots = new float[n];
        // [‖m‖ of the mean, ‖T‖ + eps]; whether the mean is ~0 (the fallback)
        double[] found = new double[2];
        boolean[] fallback = new boolean[1];
        BlockSum[] acc = new BlockSum[n];
        ChunkProgram.Pass normsPass = pass(() -> true, acc, (ops, c) -> {
            // ‖x_i‖²
            List<Tile> x = vectors(ops, c, idx, hasBase);
            for (int i = 0; i < n; i++) ops.sumSquares(x.get(i), c.offset(), acc[i]);
        }, () -> {
            for (int i = 0; i < n; i++) {
                norms[i] = Math.sqrt(acc[i].value());
                unit[i] = unitScale(norms[i]);
            }
            System.arraycopy(unitWeights(w, norms), 0, wu, 0, n);
        });
        ChunkProgram.Pass meanPass = pass(() -> true, acc, (ops, c) -> {
            // ‖Σ w_i x_i/(‖x_i‖+eps)‖²
            Tile m = c.scratch(0);
            ops.sphere(hasBase ? c.base() : null, models(c, idx), SphereSteps.mean(wu), m, null);
            ops.sumSquares(m, c.offset(), acc[0]);
        }, () -> {
            found[0] = Math.sqrt(acc[0].value());
            fallback[0] = degenerate(found[0], n, in.tensor());
        });
        ChunkProgram.Pass dotsPass = pass(() -> !fallback[0], acc, (ops, c) -> {
            // u_i·m
            List<Tile> u = models(c, idx);
            Tile m = c.scratch(0);
            ops.sphere(hasBase ? c.base() : null, u, SphereSteps.units(wu, meanScale(found[0]), unit), m, null);
            for (int i = 0; i < n; i++) ops.dot(u.get(i), m, c.offset(), acc[i]);
        }, () -> { for (int i = 0; i < n; i++) dots[i] = (float) acc[i].value(); });
        ChunkProgram.Pass tangentPass = pass(() -> !fallback[0], acc, (ops, c) -> {
            // ‖T‖², T in the first model's tile
            List<Tile> x = models(c, idx);
            ops.sphere(hasBase ? c.base() : null, x, SphereSteps.tangents(wu, meanScale(found[0]), unit, dots, w), c.scratch(0), x.getFirst());
            ops.sumSquares(x.getFirst(), c.offset(), acc[0]);
        }, () -> found[1] = Math.sqrt(acc[0].value()) + eps);
        return new ChunkProgram(1, 1, List.of(normsPass, meanPass, dotsPass, tangentPass), new ChunkProgram.Resumable() {
            @Override public void chunk(ChunkOps ops, Chunk c, Tile out) {
                if (fallback[0]) {
                    // fallback: Σ w_i x_i (+ θ₀)
                    ops.weightedSum(vectors(ops, c, idx, hasBase), w, out);
                    if (hasBase) ops.add(c.base(), out, out);
                    return;
                }
                // r = (m cos‖T‖ + T sin‖T‖/‖T‖) · Σ w_i ‖x_i‖ (+ θ₀)
                List<Tile> x = models(c, idx);
                SphereSteps steps = SphereSteps.tangents(wu, meanScale(found[0]), unit, dots, w).result(cosT(found[1]), sinOverT(found[1]),
                        (float) weightedNorm(norms, w));
                ops.sphere(hasBase ? c.base() : null, x, steps, out, x.getFirst());
            }

            /** The tiles of a one-chunk tensor hold m (scratch) and T (first model) after the ‖T‖ pass, the x_i after the mean's. */
            @Override public boolean canResume() { return true; }

            @Override public void resume(ChunkOps ops, Chunk c, Tile out) {
                if (fallback[0]) {
                    // fallback: Σ w_i x_i (+ θ₀), the mean's pass having made the x_i
                    ops.weightedSum(models(c, idx), w, out);
                } else {
                    // r = m cos‖T‖; r = r + T sin‖T‖/‖T‖; r = r · Σ w_i ‖x_i‖ (the sphere's last step as separate ops)
                    ops.scale(c.scratch(0), cosT(found[1]), out);
                    ops.weightedSum(List.of(out, c.model(idx[0])), new float[] {1f, sinOverT(found[1])}, out);
                    ops.scale(out, (float) weightedNorm(norms, w), out);
                }
                if (hasBase) ops.add(c.base(), out, out);
            }
        });
    }

    /** 1/‖m‖, the factor that normalises the mean. */
    private static float meanScale(double meanNorm) { return (float) (1 / meanNorm); }

    private static float cosT(double tn) { return (float) Math.cos(tn); }

    /** sin‖T‖/‖T‖ (‖T‖ + eps, never 0 with eps > 0). */
    private static float sinOverT(double tn) { return (float) (Math.sin(tn) / tn); }

    /** The models' chunk tiles in the order of idx (θ_i, or what the pass before left in them). */
    private static List<Tile> models(Chunk c, int[] idx) {
        List<Tile> x = new ArrayList<>(idx.length);
        for (int j : idx) x.add(c.model(j));
        return x;
    }

    /** A reduction pass whose sums start fresh in {@code acc} each time it runs. */
    private static ChunkProgram.Pass pass(java.util.function.BooleanSupplier needed, BlockSum[] acc,
                                          java.util.function.BiConsumer<ChunkOps, Chunk> chunk, Runnable end) {
        return new ChunkProgram.Pass() {
            @Override public boolean needed() {
                if (!needed.getAsBoolean()) return false;
                for (int i = 0; i < acc.length; i++) acc[i] = new BlockSum();
                return true;
            }

            @Override public void chunk(ChunkOps ops, Chunk c) { chunk.accept(ops, c); }

            @Override public void end() { end.run(); }
        };
    }

    /** x_i = θ_i − θ₀ with a base (in place in the models' chunks), else θ_i. */
    private static List<Tile> vectors(ChunkOps ops, Chunk c, int[] idx, boolean hasBase) {
        List<Tile> x = new ArrayList<>(idx.length);
        for (int j : idx) {
            Tile v = c.model(j);
            if (hasBase) ops.sub(v, c.base(), v);
            x.add(v);
        }
        return x;
    }
}
