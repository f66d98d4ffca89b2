package dev.mergeforge.backend;

/**
 * The canonical reduction order every backend follows so that sums agree to the bit: the input
 * is cut into blocks of {@link #BLOCK} consecutive elements (the last may be short); each block is
 * summed left to right in double starting from 0.0; the block sums are then added left to right
 * in double starting from 0.0.
 */
public final class Reductions {
    public static final int BLOCK = 4096;

    private Reductions() {}

    public static long blocks(long n) { return (n + BLOCK - 1) / BLOCK; }

    /** Left-to-right double sum of per-block partial sums. */
    public static double combine(double[] partials) {
        double s = 0.0;
        for (double p : partials) s += p;
        return s;
    }
}
