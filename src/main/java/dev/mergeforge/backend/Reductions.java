package dev.mergeforge.backend;

/**
 * The canonical reduction order every backend follows so that sums agree to the bit
 * (docs/methods.md, "The canonical reduction order"). The terms t_0 … t_{n-1} (each a double:
 * |x|, x² or a·b of widened floats) are cut into blocks of {@link #BLOCK} consecutive terms (the
 * last may be short). Within a block, the term at position p (0 ≤ p &lt; 4096) belongs to stripe
 * {@code p % 64}; each of the {@link #STRIPES} stripes is summed in increasing p from 0.0 in double
 * (a stripe with no terms is 0.0); the 64 stripe sums are combined by the fixed pairwise tree of
 * {@link #tree}; the block sums are then added left to right in double from 0.0.
 *
 * <p>The stripes make a block GPU-shaped (a warp reads 64 consecutive floats per step, two per
 * thread) and let the CPU vectorise without reordering (four stripes per AVX2 register); the tree
 * is the same on every backend, so the bits still agree.
 */
public final class Reductions {
    public static final int BLOCK = 4096;
    /** Stripes per block: position p of a block belongs to stripe p % STRIPES. */
    public static final int STRIPES = 64;

    private Reductions() {}

    public static long blocks(long n) { return (n + BLOCK - 1) / BLOCK; }

    /** Left-to-right double sum of per-block partial sums. */
    public static double combine(double[] partials) {
        double s = 0.0;
        for (double p : partials) s += p;
        return s;
    }

    /**
     * The block sum of 64 stripe sums: adjacent pairs, level by level —
     * s[j] = s[2j] + s[2j+1] for 32, 16, 8, 4, 2, 1 sums, always left operand first — i.e.
     * ((s0+s1)+(s2+s3))+… ; {@code s} is overwritten.
     */
    public static double tree(double[] s) {
        for (int w = STRIPES / 2; w >= 1; w /= 2) {
            for (int j = 0; j < w; j++) s[j] = s[2 * j] + s[2 * j + 1];
        }
        return s[0];
    }

    /** A per-element double term of a reduction. */
    @FunctionalInterface
    public interface Term { double at(long i); }

    /**
     * Adds term(i) for i in [lo, hi) into the stripes {@code s} of the block they lie in, each
     * term to stripe {@code (i - shift) % STRIPES}: {@code shift} maps i to its position in the
     * reduced sequence (i - shift ≡ that position mod 64).
     */
    public static void addTerms(double[] s, long lo, long hi, long shift, Term term) {
        int j = (int) Math.floorMod(lo - shift, (long) STRIPES);
        for (long i = lo; i < hi; i++) {
            s[j] += term.at(i);
            j = (j + 1) & (STRIPES - 1);
        }
    }

    /** The canonical sum of the terms [0, n): each block by {@link #block}, the block sums added left to right from 0.0. */
    public static double sum(long n, Term term) {
        double total = 0.0;
        for (long lo = 0; lo < n; lo += BLOCK) total += block(lo, Math.min(n, lo + BLOCK), term);
        return total;
    }

    /** The canonical sum of the block of terms [lo, hi) (hi - lo ≤ BLOCK, lo at position 0 of the block). */
    public static double block(long lo, long hi, Term term) {
        double[] s = new double[STRIPES];
        addTerms(s, lo, hi, lo, term);
        return tree(s);
    }
}
