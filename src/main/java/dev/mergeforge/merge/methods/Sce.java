package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.KeepBits;
import dev.mergeforge.merge.chunk.RankSelection;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.TensorView;
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
public record Sce(double selectTopk) implements ChunkedMethod {

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

    /**
     * As passes: (with select_topk &lt; 1) the variance's high-bit histogram and its zero count, then
     * the low bits at the k-th variance; the mean squares of the selected task vectors; the combine.
     * The variance is recomputed from the inputs in the reduction passes (the first two from the stored
     * bytes, loading no chunk: {@link #storedVariance}); the combine applies what the
     * squares pass selected (its keep bits, one per element: {@link KeepBits}) to τ_i, or, on a tensor of
     * one chunk, starts from the selected τ_i the squares pass left in the chunk's tiles.
     */
    @Override
    public ChunkProgram program(TensorSetup in) {
        if (!in.hasBase()) throw new dev.mergeforge.errors.ConfigException("sce needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        int[] idx = in.nonBase();
        if (idx.length == 0) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.base(), 1f, out));
        int n = idx.length;
        long numel = in.numel();
        boolean select = selectTopk < 1;
        long[] high = new long[1 << 15], zeroLow = new long[1 << 16];
        RankSelection[] sel = new RankSelection[1];
        BlockSum[] sq = new BlockSum[n];
        for (int i = 0; i < n; i++) sq[i] = new BlockSum();
        float[] w = new float[n];
        long[] seenSquares = new long[2], seenCombine = new long[2];
        // which positions the squares pass selected, for the combine of a tensor of several chunks (bits[0]: written)
        KeepBits kept = new KeepBits(in.tensor());
        boolean[] bits = new boolean[1];
        ChunkProgram.Pass variances = new ChunkProgram.Pass() {
            @Override public boolean needed() { return select; }

            @Override public boolean readsStored() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                Tile var = storedVariance(ops, c, idx);
                ops.absHistogram(var, -1, high);
                // exact zeros: the low bits of the elements in high bin 0
                ops.absHistogram(var, 0, zeroLow);
            }

            @Override public void end() {
                // k = ⌊select_topk · nnz(var)⌋ with the product in float32
                long k = (long) ((float) (numel - zeroLow[0]) * (float) selectTopk);
                sel[0] = new RankSelection(numel, 0, k);
                if (sel[0].needsPasses()) {
                    sel[0].high(high);
                    sel[0].endHigh();
                }
            }
        };
        ChunkProgram.Pass selection = new ChunkProgram.Pass() {
            @Override public boolean needed() { return select && sel[0].needsPasses(); }

            @Override public boolean readsStored() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) { sel[0].low(ops, storedVariance(ops, c, idx)); }

            @Override public void end() { sel[0].endLow(); }
        };
        ChunkProgram.Pass squares = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                List<Tile> tvs = selected(ops, c, idx, select ? sel[0].window() : null, seenSquares);
                // the selected variances (+0.0 where not): their keep bits are the combine's selection
                if (select && c.size() < numel) {
                    kept.write(ops, c.offset(), 0, c.scratch(0));
                    bits[0] = true;
                }
                for (int i = 0; i < n; i++) ops.sumSquares(tvs.get(i), c.offset(), sq[i]);
            }

            @Override public void end() {
                // w_i = mean(τ_i²) / Σ_j mean(τ_j²)
                double[] ms = new double[n];
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    ms[i] = sq[i].value() / numel;
                    sum += ms[i];
                }
                for (int i = 0; i < n; i++) w[i] = Math.abs(sum) < 1e-6 ? (float) (1.0 / n) : (float) (ms[i] / sum);
            }

            @Override public void close() { kept.close(); }
        };
        return new ChunkProgram(1, 1, List.of(variances, selection, squares), new ChunkProgram.Resumable() {
            @Override public void chunk(ChunkOps ops, Chunk c, Tile out) {
                if (!bits[0]) {
                    // one chunk whose combine does not resume (AIM wraps it): the selection computed again
                    combine(ops, c, selected(ops, c, idx, select ? sel[0].window() : null, seenCombine), w, out);
                    return;
                }
                List<Tile> tvs = deltas(ops, c, idx);
                // τ_i where the squares pass kept the variance, else +0.0: keepWhereNonZero(τ_i, var) bit for bit,
                // a variance being a sum of squares (never −0.0)
                for (Tile tv : tvs) kept.apply(ops, c.offset(), 0, tv);
                combine(ops, c, tvs, w, out);
            }

            // the squares pass, always the last, left the selected τ_i in the model chunks
            @Override public boolean canResume() { return true; }

            @Override public void resume(ChunkOps ops, Chunk c, Tile out) {
                combine(ops, c, models(c, idx), w, out);
            }
        });
    }

    /**
     * The combine of one chunk from its selected task vectors (working memory after), in one op
     * ({@link ChunkOps#disjointMean}: the bits of electSign, scale, disjointMerge, disjointDivisor, clamp,
     * div and add as {@link #merge} runs them).
     */
    private static void combine(ChunkOps ops, Chunk c, List<Tile> tvs, float[] w, Tile out) {
        // s = sign(Σ τ_i); W_i = w_i τ_i; θ = θ₀ + Σ kept W_i / max(Σ kept w_i, 1e-6)
        ops.disjointMean(c.base(), tvs, w, 1e-6f, c.scratch(0), out);
    }

    /** τ_i = θ_i − θ₀ of one chunk, in place in the model chunks. */
    private static List<Tile> deltas(ChunkOps ops, Chunk c, int[] idx) {
        List<Tile> tvs = models(c, idx);
        for (Tile m : tvs) ops.sub(m, c.base(), m);
        return tvs;
    }

    private static List<Tile> models(Chunk c, int[] idx) {
        List<Tile> tvs = new java.util.ArrayList<>(idx.length);
        for (int j : idx) tvs.add(c.model(j));
        return tvs;
    }

    /**
     * N·var = Σ (τ_i − μ)², μ = Σ τ_i / N, of one chunk into scratch 0, in one sweep that also leaves
     * τ_i in the model chunks ({@link ChunkOps#deltaVariance}: the bits of the sum, scale, differences
     * and squares written as separate ops, the variance summed from the first square).
     */
    private static Tile variance(ChunkOps ops, Chunk c, int[] idx) {
        Tile var = c.scratch(0);
        ops.deltaVariance(c.base(), models(c, idx), var);
        return var;
    }

    /**
     * {@link #variance}'s bits for a chunk left unloaded ({@link ChunkProgram.Pass#readsStored}), into
     * scratch 0 straight from the stored inputs ({@link ChunkOps#storedVariance}; the model tiles are its
     * scratch): the two passes that need only the variance read no float32 chunk of an input.
     */
    private static Tile storedVariance(ChunkOps ops, Chunk c, int[] idx) {
        Tile var = c.scratch(0);
        List<TensorView> xs = new java.util.ArrayList<>(idx.length);
        for (int j : idx) xs.add(c.stored().models().get(j));
        ops.storedVariance(c.stored().base(), xs, c.offset(), models(c, idx), var);
        return var;
    }

    /** The task vectors of one chunk, zeroed outside the selected variances when {@code window} is set. */
    private static List<Tile> selected(ChunkOps ops, Chunk c, int[] idx, RankWindow window, long[] seen) {
        if (window == null) return deltas(ops, c, idx);
        Tile var = variance(ops, c, idx);
        ops.keepRanks(var, window, seen);
        List<Tile> tvs = models(c, idx);
        for (Tile tv : tvs) ops.keepWhereNonZero(tv, var, tv);
        return tvs;
    }
}
