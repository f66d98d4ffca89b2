package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.PortableOps;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;

/**
 * Arcee Fusion's per-row KL divergence over chunks of whole rows: KL(p ‖ q), p = softmax(θ₁ row) + ε,
 * q = softmax(θ₀ row) + ε, by the loops of {@link ArceeFusion}'s whole-tensor path (double, the same
 * {@link Math#exp}/{@link Math#log} calls on the same values in the same order, rounded to float32
 * once), so the same bits. The first pass computes every row's KL and keeps those of the tensor's
 * first {@code keep} rows (4 bytes a row: 0.5 MB for a 128,256-row embedding); later passes read the
 * kept ones and recompute the rest. A row of at most {@link #ROW_BUFFER} elements is copied into a
 * thread's buffers (made once per tensor and thread: 24 bytes per element of a row) and its
 * exponentials computed once and kept there for the KL sum; a longer row (only 1-D tensors in
 * practice) computes them twice. Rows are independent, so they run on several threads without
 * changing a bit.
 */
final class FusionKl {
    /** Rows of at most this many elements keep their exponentials in a buffer (1.5 MB per thread at most). */
    static final int ROW_BUFFER = 1 << 16;
    /** Rows whose KL is kept after the first pass by default: 16 MB at most, whatever the tensor. */
    static final long KEEP_ROWS = 1L << 22;
    private static final Parallel PAR = PortableOps.COMMON;

    private final long cols;
    private final float[] kept;
    /** Each thread's row buffers, made once per tensor (rows up to ROW_BUFFER elements; null for longer rows). */
    private final ThreadLocal<Row> buffers;

    /** A tensor of {@code rows} rows of {@code cols} elements; the KL of its first {@code keep} rows is kept. */
    FusionKl(long rows, long cols, long keep) {
        this.cols = cols;
        this.kept = new float[(int) Math.min(rows, keep)];
        this.buffers = cols <= ROW_BUFFER ? ThreadLocal.withInitial(() -> new Row((int) cols)) : null;
    }

    /**
     * The KL of the {@code n} whole rows in a chunk, the first being the tensor's row {@code firstRow}
     * (element offset 0 of the chunk's tiles). {@code first}: the first pass, which computes every row
     * and keeps those it may; later passes read the kept rows and recompute only the others.
     */
    float[] rows(Tile base, Tile other, long firstRow, int n, boolean first) {
        float[] kl = new float[n];
        long per = Math.max(1, Parallel.CHUNK / cols);
        PAR.forRange(n, per, (lo, hi) -> {
            Row row = buffers == null ? null : buffers.get();
            for (long r = lo; r < hi; r++) {
                long at = firstRow + r;
                boolean keepable = at < kept.length;
                if (!first && keepable) { kl[(int) r] = kept[(int) at]; continue; }
                kl[(int) r] = row != null ? row.kl(base, other, r * cols) : kl(base, other, r * cols, cols);
                if (keepable) kept[(int) at] = kl[(int) r];
            }
        });
        return kl;
    }

    /** One thread's buffers for a row: its values and their exponentials, each computed once. */
    private static final class Row {
        private final float[] b, o;
        private final double[] eb, eo;

        Row(int cols) { b = new float[cols]; o = new float[cols]; eb = new double[cols]; eo = new double[cols]; }

        /** KL(p ‖ q) of the row at element {@code at}: the loops of {@link FusionKl#kl} on the buffers. */
        float kl(Tile base, Tile other, long at) {
            int cols = b.length;
            MemorySegment.copy(base.data(), Tile.F32, at * 4, b, 0, cols);
            MemorySegment.copy(other.data(), Tile.F32, at * 4, o, 0, cols);
            double mb = Double.NEGATIVE_INFINITY, mo = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < cols; j++) { mb = Math.max(mb, b[j]); mo = Math.max(mo, o[j]); }
            double sb = 0, so = 0;
            for (int j = 0; j < cols; j++) {
                eb[j] = Math.exp(b[j] - mb);
                eo[j] = Math.exp(o[j] - mo);
                sb += eb[j];
                so += eo[j];
            }
            // KL = Σ p·log(p/q)
            double kl = 0;
            for (int j = 0; j < cols; j++) {
                double p = eo[j] / so + ArceeFusion.EPS, q = eb[j] / sb + ArceeFusion.EPS;
                kl += p * Math.log(p / q);
            }
            return (float) kl;
        }
    }

    /** KL(p ‖ q) of a row too long for the buffers, at element {@code o}: the exponentials computed twice. */
    static float kl(Tile base, Tile other, long o, long cols) {
        double mb = Double.NEGATIVE_INFINITY, mo = Double.NEGATIVE_INFINITY;
        for (long j = 0; j < cols; j++) { mb = Math.max(mb, base.get(o + j)); mo = Math.max(mo, other.get(o + j)); }
        double sb = 0, so = 0;
        for (long j = 0; j < cols; j++) { sb += Math.exp(base.get(o + j) - mb); so += Math.exp(other.get(o + j) - mo); }
        // KL = Σ p·log(p/q)
        double kl = 0;
        for (long j = 0; j < cols; j++) {
            double p = Math.exp(other.get(o + j) - mo) / so + ArceeFusion.EPS, q = Math.exp(base.get(o + j) - mb) / sb + ArceeFusion.EPS;
            kl += p * Math.log(p / q);
        }
        return (float) kl;
    }
}
