package dev.mergeforge.backend;

import java.util.function.LongToDoubleFunction;

/**
 * The canonical reduction order of docs/methods.md ("The canonical reduction order") written out
 * from its definition, for tests, sharing no code with {@link Reductions} or {@link BlockSum}: per
 * 4096-element block, each of the 64 stripes summed on its own (stripe-major, where the backends go
 * element by element), the stripe sums combined by recursive halving (the balanced binary tree,
 * which for 64 leaves is the level-by-level adjacent-pairs tree the backends build), the block
 * sums left to right.
 */
public final class CanonicalSum {
    private CanonicalSum() {}

    /** The canonical sum of term(i) for i in [0, n). */
    public static double of(long n, LongToDoubleFunction term) { return window(0, n, term); }

    /**
     * The canonical sum of a window of a longer sequence: term(i) at sequence index i for i in
     * [start, start + n), every other index a zero (blocks placed by the sequence index).
     */
    public static double window(long start, long n, LongToDoubleFunction term) {
        double total = 0.0;
        long end = start + n;
        for (long b = start / 4096 * 4096; b < end; b += 4096) {
            double[] stripe = new double[64];
            for (int j = 0; j < 64; j++) {
                double s = 0.0;
                for (long i = b + j; i < b + 4096; i += 64) {
                    if (i >= start && i < end) s += term.applyAsDouble(i);
                }
                stripe[j] = s;
            }
            total += halves(stripe, 0, 64);
        }
        return total;
    }

    /** The block sum of 64 stripe sums: the balanced tree, recursively. */
    public static double tree(double[] s) { return halves(s, 0, 64); }

    /** The balanced tree over s[lo, lo + len): left half + right half. */
    static double halves(double[] s, int lo, int len) {
        return len == 1 ? s[lo] : halves(s, lo, len / 2) + halves(s, lo + len / 2, len / 2);
    }

    /** Σ|a| (kind 0), Σa² (1) or Σa·c (2) over the arrays, terms in double, in the canonical order. */
    public static double of(float[] a, float[] c, int kind) {
        return of(a.length, i -> switch (kind) {
            case 0 -> Math.abs((double) a[(int) i]);
            case 1 -> (double) a[(int) i] * a[(int) i];
            default -> (double) a[(int) i] * c[(int) i];
        });
    }
}
