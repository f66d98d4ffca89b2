package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.PortableOps;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
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
 * KL are computed in double with our own exp and log in a canonical summation order
 * ({@code FusionLoops}, docs/methods.md), so every backend gives the same bits, the importance
 * rounded to float32; the rest is float32 as mergekit. As passes over chunks of whole rows
 * ({@link #program}): each row's KL and the quantiles' high-bit histogram, their low bits, then the
 * combine; the KL is computed once, the importance in each pass.
 */
public record ArceeFusion() implements ChunkedMethod {
    private static final Parallel PAR = PortableOps.COMMON;

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
            importance(base, other, imp, out.shape().cols());
            long n = imp.size();
            float median = FloatSelect.kthSmallest(imp, quantileIndex(0.5, n));
            float q1 = FloatSelect.kthSmallest(imp, quantileIndex(0.25, n));
            float q3 = FloatSelect.kthSmallest(imp, quantileIndex(0.75, n));
            // threshold = median + 1.5·(Q3 − Q1), in float32
            float iqr = q3 - q1;
            float threshold = median + 1.5f * iqr;
            for (long e = 0; e < n; e++) {
                float b = base.get(e);
                // θ = θ₀ + (θ₁ − θ₀)·[importance ≥ threshold]
                out.set(e, b + (other.get(e) - b) * (imp.get(e) >= threshold ? 1f : 0f));
            }
        } finally {
            ctx.release(imp);
        }
    }

    /** mergekit's quantile index: ⌊q·(n−1)⌋ (exact in double for the q used here). */
    static long quantileIndex(double q, long n) { return (long) (q * (n - 1)); }

    /**
     * The whole-tensor path's maths on chunks holding whole rows (a 1-D tensor is one row, so one
     * chunk), all in the backend's ops: pass 1 computes each row's KL once ({@link ChunkOps#rowKl},
     * kept by {@link FusionKl} for later passes), writes the importances |θ₁ − θ₀|·KL into a scratch
     * tile ({@link ChunkOps#fusionImportance}) and histograms the high bits of their order keys
     * ({@link ChunkOps#orderHistogram}); pass 2 the low bits in the bins of Q1, the median and Q3
     * ({@link FloatRanks}: the exact values {@link FloatSelect} finds); then the combine
     * ({@link ChunkOps#fusionCombine}). The same definitions as {@link #merge} ({@code FusionLoops}):
     * the same bytes on any backend.
     */
    @Override
    public ChunkProgram program(TensorSetup in) { return program(in, FusionKl.KEEP_ROWS); }

    /** As {@link #program(TensorSetup)}, keeping the KL of the first {@code keepRows} rows (tests cut it short). */
    ChunkProgram program(TensorSetup in, long keepRows) {
        if (!in.hasBase()) throw new ConfigException("arcee_fusion needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        int[] idx = in.nonBase();
        if (idx.length == 0) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.base(), 1f, out));
        int other = idx[0];
        long n = in.numel(), cols = Math.max(1, in.shape().cols());
        FloatRanks q = new FloatRanks(n, quantileIndex(0.25, n), quantileIndex(0.5, n), quantileIndex(0.75, n));
        FusionKl kl = new FusionKl(n / cols, cols, keepRows);
        float[] threshold = new float[1];
        ChunkProgram.Pass high = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }
            @Override public void chunk(ChunkOps ops, Chunk c) {
                ops.orderHistogram(importances(ops, kl, c, other, cols, true), -1, q.highHistogram());
            }
            @Override public void end() { q.endHigh(); }
        };
        ChunkProgram.Pass low = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }
            @Override public void chunk(ChunkOps ops, Chunk c) {
                Tile imp = importances(ops, kl, c, other, cols, false);
                for (int b : q.lowBins()) ops.orderHistogram(imp, b, q.lowHistogram(b));
            }
            @Override public void end() {
                q.endLow();
                // threshold = median + 1.5·(Q3 − Q1), in float32
                float iqr = q.value(2) - q.value(0);
                threshold[0] = q.value(1) + 1.5f * iqr;
            }
        };
        // a tensor of one chunk resumes from the tiles pass 2 left: the inputs, unchanged (no pass writes them)
        ChunkProgram.Resumable combine = new ChunkProgram.Resumable() {
            @Override public boolean canResume() { return true; }
            @Override public void resume(ChunkOps ops, Chunk c, Tile out) { chunk(ops, c, out); }
            @Override public void chunk(ChunkOps ops, Chunk c, Tile out) {
                // θ = θ₀ + (θ₁ − θ₀)·[importance ≥ threshold]
                ops.fusionCombine(c.base(), c.model(other), cols, rowKl(ops, kl, c, other, cols, false), threshold[0], out);
            }
        };
        return new ChunkProgram(cols, 1, List.of(high, low), combine);
    }

    /** The chunk's importances |θ₁ − θ₀|·KL in its scratch tile ({@code first}: pass 1, which computes and keeps the KL). */
    private static Tile importances(ChunkOps ops, FusionKl kl, Chunk c, int other, long cols, boolean first) {
        Tile imp = c.scratch(0);
        ops.fusionImportance(c.base(), c.model(other), cols, rowKl(ops, kl, c, other, cols, first), imp);
        return imp;
    }

    /** The KL of each row of the chunk ({@code first}: pass 1, which computes and keeps them). */
    private static float[] rowKl(ChunkOps ops, FusionKl kl, Chunk c, int other, long cols, boolean first) {
        return kl.rows(ops, c.base(), c.model(other), c.offset() / cols, Math.toIntExact(c.size() / cols), first);
    }

    /** imp = |θ₁ − θ₀|·KL(p ‖ q) per row of {@code cols} elements, p = softmax(θ₁ row) + ε, q = softmax(θ₀ row) + ε ({@code FusionLoops}). */
    private static void importance(Tile base, Tile other, Tile imp, long cols) {
        double[] exact = new double[Math.toIntExact(imp.size() / cols)];
        FusionLoops.rowKl(PAR, base, other, cols, exact);
        // the KL rounded to float32 once
        float[] kl = new float[exact.length];
        for (int r = 0; r < kl.length; r++) kl[r] = (float) exact[r];
        FusionLoops.importance(PAR, base, other, cols, kl, imp);
    }
}
