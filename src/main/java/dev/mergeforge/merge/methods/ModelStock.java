package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * Model Stock (Jang et al. 2024, arXiv 2403.19522), pinned to mergekit's {@code model_stock.py}:
 * with N ≥ 2 fine-tunes θ_i of θ₀, c = the mean over pairs i &lt; j of
 * clamp(τ_i·τ_j / max(‖τ_i‖‖τ_j‖, 1e-6), −1, 1), t = N c / (1 + (N−1) c), and
 * out = t·(Σθ_i/N) + (1−t)·θ₀. The cosine is over the whole flattened tensor, or per row (vectors
 * along the last axis; a 1-D tensor is one row) with {@code filter_wise}. Like mergekit, c = −1/(N−1)
 * divides by zero.
 */
public record ModelStock(boolean filterWise) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("model_stock",
            "interpolate between the base and the average of the fine-tunes by their task-vector angles",
            "https://arxiv.org/abs/2403.19522", MethodSpec.BaseUse.REQUIRED, 2, Integer.MAX_VALUE,
            List.of(ParamSpec.flag("filter_wise", false, "compute the interpolation factor per row instead of per tensor")),
            List.of(),
            g -> new ModelStock(g.flag("filter_wise", false)));

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Backend b = ctx.backend();
        Tile base = TaskVectors.base(in, "model_stock");
        int[] idx = in.nonBase();
        if (idx.length == 0) { b.scale(base, 1f, out); return; }
        if (idx.length < 2) {
            throw new dev.mergeforge.errors.ConfigException("model_stock needs at least two models besides the base, got "
                    + idx.length + " for tensor " + in.tensor() + "; add another model");
        }
        int n = idx.length;
        List<Tile> ws = new ArrayList<>(n);
        for (int j : idx) ws.add(in.models().get(j));
        float[] ones = new float[n];
        java.util.Arrays.fill(ones, 1f);
        // w̄ = Σ θ_i / N
        b.weightedSum(ws, ones, out);
        b.scale(out, 1f / n, out);
        // τ_i = θ_i − θ₀
        for (Tile w : ws) b.sub(w, base, w);
        int rank = out.shape().rank();
        Lanes lanes = filterWise ? Lanes.along(out.shape(), Math.max(0, rank - 1)) : Lanes.whole(out.size());
        int count = Math.toIntExact(lanes.count());
        double[][] sq = new double[n][count];
        for (int i = 0; i < n; i++) b.laneDots(ws.get(i), ws.get(i), lanes, sq[i]);
        double[] cosSum = new double[count], dots = new double[count];
        int pairs = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                b.laneDots(ws.get(i), ws.get(j), lanes, dots);
                for (int v = 0; v < count; v++) {
                    // cos_ij = clamp(τ_i·τ_j / max(‖τ_i‖‖τ_j‖, 1e-6), −1, 1)
                    double np = Math.max(Math.sqrt(sq[i][v]) * Math.sqrt(sq[j][v]), 1e-6);
                    cosSum[v] += Math.max(-1, Math.min(1, dots[v] / np));
                }
                pairs++;
            }
        }
        float[] t = new float[count], u = new float[count];
        for (int v = 0; v < count; v++) {
            // t = N c / (1 + (N−1) c)
            double c = cosSum[v] / pairs;
            t[v] = (float) (n * c / (1 + (n - 1) * c));
            u[v] = 1f - t[v];
        }
        // out = t·w̄ + (1 − t)·θ₀
        Tile tmp = ws.get(0);
        b.laneScale(out, t, lanes, out);
        b.laneScale(base, u, lanes, tmp);
        b.add(out, tmp, out);
    }

    /** One reduction pass for ‖τ_i‖² and τ_i·τ_j per vector, then the combine. */
    @Override
    public ChunkProgram program(TensorSetup in) {
        if (!in.hasBase()) throw new dev.mergeforge.errors.ConfigException("model_stock needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        int[] idx = in.nonBase();
        if (idx.length == 0) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.base(), 1f, out));
        if (idx.length < 2) {
            throw new dev.mergeforge.errors.ConfigException("model_stock needs at least two models besides the base, got "
                    + idx.length + " for tensor " + in.tensor() + "; add another model");
        }
        int n = idx.length;
        VectorLanes vl = VectorLanes.of(in.shape(), filterWise);
        VectorLanes.Dots[] sq = new VectorLanes.Dots[n];
        VectorLanes.Dots[][] dot = new VectorLanes.Dots[n][n];
        for (int i = 0; i < n; i++) {
            sq[i] = vl.dots();
            for (int j = i + 1; j < n; j++) dot[i][j] = vl.dots();
        }
        float[] t = new float[vl.count], u = new float[vl.count];
        ChunkProgram.Pass angles = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                // τ_i = θ_i − θ₀
                for (int j : idx) ops.sub(c.model(j), c.base(), c.model(j));
                for (int i = 0; i < n; i++) {
                    sq[i].add(ops, c, c.model(idx[i]), c.model(idx[i]));
                    for (int j = i + 1; j < n; j++) dot[i][j].add(ops, c, c.model(idx[i]), c.model(idx[j]));
                }
            }

            @Override public void end() {
                double[] cosSum = new double[vl.count];
                int pairs = 0;
                for (int i = 0; i < n; i++) {
                    for (int j = i + 1; j < n; j++) {
                        double[] si = sq[i].values(), sj = sq[j].values(), d = dot[i][j].values();
                        for (int v = 0; v < vl.count; v++) {
                            // cos_ij = clamp(τ_i·τ_j / max(‖τ_i‖‖τ_j‖, 1e-6), −1, 1)
                            double np = Math.max(Math.sqrt(si[v]) * Math.sqrt(sj[v]), 1e-6);
                            cosSum[v] += Math.max(-1, Math.min(1, d[v] / np));
                        }
                        pairs++;
                    }
                }
                for (int v = 0; v < vl.count; v++) {
                    // t = N c / (1 + (N−1) c)
                    double cc = cosSum[v] / pairs;
                    t[v] = (float) (n * cc / (1 + (n - 1) * cc));
                    u[v] = 1f - t[v];
                }
            }
        };
        float[] ones = new float[n];
        java.util.Arrays.fill(ones, 1f);
        return new ChunkProgram(vl.align(), 0, List.of(angles), (ops, c, out) -> {
            List<Tile> ws = new ArrayList<>(n);
            for (int j : idx) ws.add(c.model(j));
            // w̄ = Σ θ_i / N
            ops.weightedSum(ws, ones, out);
            ops.scale(out, 1f / n, out);
            // out = t·w̄ + (1 − t)·θ₀
            Tile tmp = ws.get(0);
            vl.scale(ops, c, out, t, out);
            vl.scale(ops, c, c.base(), u, tmp);
            ops.add(out, tmp, out);
        });
    }
}
