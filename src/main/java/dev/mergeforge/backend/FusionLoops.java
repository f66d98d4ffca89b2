package dev.mergeforge.backend;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The reference loops of Arcee Fusion's chunk ops (docs/methods.md, "arcee_fusion"): each row's KL
 * divergence, the importances |θ₁ − θ₀|·KL, histograms of their order keys and the combine. The
 * Java chunk ops run them, the CUDA ops on a chunk's host copy, and the whole-tensor path of
 * {@code ArceeFusion} on whole tiles; the native library follows them bit for bit
 * ({@code native/src/fusion.c}).
 *
 * <p>The KL of a row of n elements, b = θ₀ row, o = θ₁ row (float32, widened to double):
 * mb = max b, mo = max o (in float); eb_j = exp(b_j − mb), eo_j = exp(o_j − mo) with
 * {@link ExpLog#exp}; sb = Σ eb_j, so = Σ eo_j; p_j = eo_j·(1/so) + ε, q_j = eb_j·(1/sb) + ε (ε = 1e-8;
 * the reciprocal rounded once per row, as the repo divides whole tensors by scalars);
 * KL = Σ p_j·log(p_j/q_j) with {@link ExpLog#log}, in double (the method rounds it to float32 once).
 * A row whose sb or so is NaN (it holds a NaN or +∞; only with --allow-nonfinite) has KL NaN.
 * Every Σ is in {@link Reductions}' canonical order over positions j within the row (blocks of
 * 4,096, 64 stripes, the fixed tree, blocks left to right), so any SIMD width or GPU block shape
 * can follow it. A row of at most {@link #ROW_BUFFER} elements keeps its exponentials in the
 * thread's buffers for the KL sum; a longer one computes them again (the same values).
 */
public final class FusionLoops {
    /** The ε added to both softmaxes. */
    public static final double EPS = 1e-8;
    /** Bins of each order-key histogram (16 bits). */
    public static final int BINS = 1 << 16;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private FusionLoops() {}

    /** The KL of each of the size/cols whole rows of the tiles: kl[r] for row r (rows on several threads: independent, so the same bits). */
    public static void rowKl(Parallel par, Tile base, Tile other, long cols, double[] kl) {
        long rows = checkRows(base, other, cols, kl.length);
        MemorySegment b = base.data(), o = other.data();
        par.forRange(rows, Math.max(1, Parallel.CHUNK / cols), (lo, hi) -> {
            for (long r = lo; r < hi; r++) kl[(int) r] = rowKl(b, o, r * cols, cols);
        });
    }

    /** KL(p ‖ q) of the row of {@code cols} elements at element {@code at} of b (θ₀) and o (θ₁), in double. */
    public static double rowKl(MemorySegment b, MemorySegment o, long at, long cols) {
        // mb = max θ₀, mo = max θ₁ (in float; the first of equal values kept)
        float mb = Float.NEGATIVE_INFINITY, mo = Float.NEGATIVE_INFINITY;
        for (long j = at; j < at + cols; j++) {
            float vb = b.getAtIndex(F, j), vo = o.getAtIndex(F, j);
            mb = vb > mb ? vb : mb;
            mo = vo > mo ? vo : mo;
        }
        // a row's exponentials are kept for the KL sum when it fits the thread's buffers (else computed again: the same values)
        double[][] buf = cols <= ROW_BUFFER ? rowBuffers((int) cols) : null;
        double[] eb = buf == null ? null : buf[0], eo = buf == null ? null : buf[1];
        // sb = Σ exp(θ₀ − mb), so = Σ exp(θ₁ − mo)
        double sb = sumExp(b, at, cols, mb, eb), so = sumExp(o, at, cols, mo, eo);
        // a NaN or +∞ in a row makes its sums NaN (-∞ only gives exp 0): its KL is NaN
        if (Double.isNaN(sb + so)) return Double.NaN;
        // the softmaxes' divisions as products with the reciprocals
        double rb = 1.0 / sb, ro = 1.0 / so;
        float maxB = mb, maxO = mo;
        // KL = Σ p·log(p/q), p = exp(θ₁ − mo)·(1/so) + ε, q = exp(θ₀ − mb)·(1/sb) + ε
        return Reductions.sum(cols, j -> {
            double xb = eb != null ? eb[(int) j] : ExpLog.exp((double) b.getAtIndex(F, at + j) - maxB);
            double xo = eo != null ? eo[(int) j] : ExpLog.exp((double) o.getAtIndex(F, at + j) - maxO);
            double p = xo * ro + EPS, q = xb * rb + EPS;
            return p * ExpLog.log(p / q);
        });
    }

    /**
     * Σ exp(x_j − m) over the row of n elements at {@code at}, in the canonical order of
     * {@link Reductions} (positions counted from the row's start); each exponential also goes to
     * e[j] when e is not null.
     */
    private static double sumExp(MemorySegment x, long at, long n, double m, double[] e) {
        return Reductions.sum(n, j -> {
            double v = ExpLog.exp((double) x.getAtIndex(F, at + j) - m);
            if (e != null) e[(int) j] = v;
            return v;
        });
    }

    /** Rows of at most this many elements keep their exponentials in the thread's buffers (1 MiB). */
    static final int ROW_BUFFER = 1 << 16;
    private static final ThreadLocal<double[][]> ROWS = ThreadLocal.withInitial(() -> new double[2][0]);

    /** The calling thread's two buffers of at least {@code cols} doubles, kept from row to row. */
    private static double[][] rowBuffers(int cols) {
        double[][] r = ROWS.get();
        if (r[0].length < cols) { r[0] = new double[cols]; r[1] = new double[cols]; }
        return r;
    }

    /** imp[i] = |other[i] − base[i]|·kl[i / cols] (float32). */
    public static void importance(Parallel par, Tile base, Tile other, long cols, float[] kl, Tile imp) {
        checkRows(base, other, cols, kl.length);
        sameSize(base, imp);
        MemorySegment b = base.data(), o = other.data(), m = imp.data();
        par.forRange(base.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) m.setAtIndex(F, i, Math.abs(o.getAtIndex(F, i) - b.getAtIndex(F, i)) * kl[(int) (i / cols)]);
        });
    }

    /** out[i] = base[i] + (d·[|d|·kl[i / cols] ≥ t]), d = other[i] − base[i], the mask 1f or 0f (float32; out may alias an input). */
    public static void combine(Parallel par, Tile base, Tile other, long cols, float[] kl, float t, Tile out) {
        checkRows(base, other, cols, kl.length);
        sameSize(base, out);
        MemorySegment b = base.data(), o = other.data(), m = out.data();
        par.forRange(base.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float bi = b.getAtIndex(F, i), d = o.getAtIndex(F, i) - bi;
                // θ = θ₀ + (θ₁ − θ₀)·[importance ≥ threshold]
                m.setAtIndex(F, i, bi + d * (Math.abs(d) * kl[(int) (i / cols)] >= t ? 1f : 0f));
            }
        });
    }

    /** Float bits mapped so that unsigned int order is numeric order: negatives (−0.0 too) flipped below the positives. */
    public static int orderKey(float f) {
        int b = Float.floatToRawIntBits(f);
        return b ^ ((b >> 31) | 0x80000000);
    }

    /**
     * Histogram of the order keys k = {@link #orderKey}(x[i]): with {@code high < 0},
     * hist[k >>> 16] += 1; otherwise, for the elements with k >>> 16 == high, hist[k &amp; 0xffff] += 1.
     * Both have {@link #BINS} bins.
     */
    public static void orderHistogram(Parallel par, Tile x, int high, long[] hist) {
        checkHistogram(high, hist);
        MemorySegment s = x.data();
        par.forRange(x.size(), (lo, hi) -> {
            long[] h = new long[BINS];
            boolean any = false;
            for (long i = lo; i < hi; i++) {
                int k = orderKey(s.getAtIndex(F, i));
                if (high < 0) { h[k >>> 16]++; any = true; }
                else if ((k >>> 16) == high) { h[k & 0xffff]++; any = true; }
            }
            if (any) synchronized (hist) { for (int v = 0; v < BINS; v++) hist[v] += h[v]; }
        });
    }

    /** The checks every backend makes on {@code orderHistogram}'s arguments. */
    public static void checkHistogram(int high, long[] hist) {
        if (hist.length != BINS) throw new IllegalArgumentException("histogram of " + hist.length + " bins, need " + BINS);
        if (high >= BINS) throw new IllegalArgumentException("high bin " + high + " beyond " + (BINS - 1));
    }

    /** The checks every backend makes on the row ops' arguments; returns the number of rows. */
    public static long checkRows(Tile base, Tile other, long cols, int kls) {
        sameSize(base, other);
        if (cols <= 0 || base.size() % cols != 0) throw new IllegalArgumentException("a chunk of " + base.size() + " elements is not whole rows of " + cols);
        long rows = base.size() / cols;
        if (kls < rows) throw new IllegalArgumentException("KL of " + kls + " rows for a chunk of " + rows);
        return rows;
    }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }
}
