package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.ChunkOps;
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

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Arcee Fusion (Arcee AI; mergekit 0.1.4's {@code arcee_fusion.py}): take the other model's value
 * only where it matters most. Per row (last axis; a 1-D tensor is one row) the KL divergence
 * KL(softmax(θ₁) + ε ‖ softmax(θ₀) + ε), ε = 1e-8, weights the change: importance =
 * |θ₁ − θ₀|·KL_row. Threshold = median + 1.5·(Q3 − Q1) of all importances, where quantile q is
 * the element at sorted index ⌊q·(n−1)⌋ (mergekit's convention, no interpolation); out =
 * θ₀ + (θ₁ − θ₀)·[importance ≥ threshold]. The quantiles are exact (an O(n) radix select):
 * mergekit estimates them from 1M randomly sampled elements when a tensor has more. Softmax and
 * KL are computed in double, the importance rounded to float32; the rest is float32 as mergekit.
 * As passes over chunks of whole rows ({@link #program}): each row's KL and the quantiles' high-bit
 * histogram, their low bits, then the combine; the KL is computed once, the importance in each pass.
 */
public record ArceeFusion() implements ChunkedMethod {
    static final double EPS = 1e-8;
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
                // θ = θ₀ + (θ₁ − θ₀)·mask
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
     * chunk): pass 1 computes each row's KL once ({@link FusionKl}, kept for later passes) and
     * histograms the high bits of the importances' order keys, pass 2 the low bits at Q1, the median
     * and Q3 ({@link FloatRanks}, the exact values {@link FloatSelect} finds), then the combine masks;
     * importance = |θ₁ − θ₀|·KL is recomputed from the kept KL in each. Same bytes as {@link #merge}
     * on any backend: the same float32 and double operations in host loops.
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
                ops.onHost(List.of(c.base(), c.model(other)), List.of(), () -> eachImportance(kl, c, other, cols, true, q::high));
            }
            @Override public void end() { q.endHigh(); }
        };
        ChunkProgram.Pass low = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }
            @Override public void chunk(ChunkOps ops, Chunk c) {
                ops.onHost(List.of(c.base(), c.model(other)), List.of(), () -> eachImportance(kl, c, other, cols, false, q::low));
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
                // a host loop over the chunk's memory, so it runs inside ops.onHost
                ops.onHost(List.of(c.base(), c.model(other)), List.of(out), () -> {
                    float[] k = rowKl(kl, c, other, cols, false);
                    float t = threshold[0];
                    PAR.forRange(k.length, Math.max(1, Parallel.CHUNK / cols), (lo, hi) -> {
                        Span sp = new Span();
                        for (long r = lo; r < hi; r++) {
                            for (long e = r * cols, end = e + cols; e < end; e += Span.SIZE) {
                                int m = sp.importances(c.base(), c.model(other), e, end, k[(int) r]);
                                // θ = θ₀ + (θ₁ − θ₀)·[importance ≥ threshold]
                                for (int i = 0; i < m; i++) sp.imp[i] = sp.b[i] + (sp.o[i] - sp.b[i]) * (sp.imp[i] >= t ? 1f : 0f);
                                MemorySegment.copy(sp.imp, 0, out.data(), Tile.F32, e * 4, m);
                            }
                        }
                    });
                });
            }
        };
        return new ChunkProgram(cols, 0, List.of(high, low), combine);
    }

    /** A thread's buffers for a run of at most {@link #SIZE} elements of one row (host loops on arrays, not tile memory). */
    private static final class Span {
        static final int SIZE = 4096;
        final float[] b = new float[SIZE], o = new float[SIZE], imp = new float[SIZE];

        /**
         * Loads θ₀ and θ₁ at elements [e, min(e + SIZE, end)) of a row whose KL is {@code kl}, and their
         * importances |θ₁ − θ₀|·KL (float32); returns how many.
         */
        int importances(Tile base, Tile other, long e, long end, float kl) {
            int m = (int) Math.min(SIZE, end - e);
            MemorySegment.copy(base.data(), Tile.F32, e * 4, b, 0, m);
            MemorySegment.copy(other.data(), Tile.F32, e * 4, o, 0, m);
            for (int i = 0; i < m; i++) imp[i] = Math.abs(o[i] - b[i]) * kl;
            return m;
        }
    }

    /** Takes one float32 value. */
    @FunctionalInterface
    private interface FloatSink { void accept(float v); }

    /** Feeds every importance |θ₁ − θ₀|·KL of the chunk, in element order, to {@code sink} (a histogram pass). */
    private static void eachImportance(FusionKl kl, Chunk c, int other, long cols, boolean first, FloatSink sink) {
        float[] k = rowKl(kl, c, other, cols, first);
        Span sp = new Span();
        for (int r = 0; r < k.length; r++) {
            for (long e = r * cols, end = e + cols; e < end; e += Span.SIZE) {
                int m = sp.importances(c.base(), c.model(other), e, end, k[r]);
                for (int i = 0; i < m; i++) sink.accept(sp.imp[i]);
            }
        }
    }

    /** The KL of each row of the chunk ({@code first}: pass 1, which computes and keeps them). */
    private static float[] rowKl(FusionKl kl, Chunk c, int other, long cols, boolean first) {
        return kl.rows(c.base(), c.model(other), c.offset() / cols, Math.toIntExact(c.size() / cols), first);
    }

    /** imp = |θ₁ − θ₀|·KL(p ‖ q) per row of {@code cols} elements, p = softmax(θ₁ row) + ε, q = softmax(θ₀ row) + ε. */
    private static void importance(Tile base, Tile other, Tile imp, long cols) {
        long rows = imp.size() / cols;
        for (long r = 0; r < rows; r++) {
            long o = r * cols;
            double mb = Double.NEGATIVE_INFINITY, mo = Double.NEGATIVE_INFINITY;
            for (long j = 0; j < cols; j++) { mb = Math.max(mb, base.get(o + j)); mo = Math.max(mo, other.get(o + j)); }
            double sb = 0, so = 0;
            for (long j = 0; j < cols; j++) { sb += Math.exp(base.get(o + j) - mb); so += Math.exp(other.get(o + j) - mo); }
            // KL = Σ p·log(p/q)
            double kl = 0;
            for (long j = 0; j < cols; j++) {
                double p = Math.exp(other.get(o + j) - mo) / so + EPS, q = Math.exp(base.get(o + j) - mb) / sb + EPS;
                kl += p * Math.log(p / q);
            }
            float klf = (float) kl;
            for (long j = 0; j < cols; j++) imp.set(o + j, Math.abs(other.get(o + j) - base.get(o + j)) * klf);
        }
    }
}
