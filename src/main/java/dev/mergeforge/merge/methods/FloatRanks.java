package dev.mergeforge.merge.methods;

import java.util.Arrays;

/**
 * Exact order statistics of a tensor-sized float32 vector seen chunk by chunk: the two radix passes
 * of {@link FloatSelect} split over chunks, for several ranks at once. The first pass counts the high
 * 16 bits of every element's order key (65,536 bins), which places each rank in a bin; the second
 * counts the low 16 bits of the elements in those bins. The value at a rank is unique, so the result
 * is the bits {@link FloatSelect#kthSmallest} finds on the whole vector, whatever the chunking.
 * Memory: one 65,536-bin histogram per rank, whatever the vector's size.
 */
final class FloatRanks {
    private static final int BINS = 1 << 16;

    private final long[] ranks;
    private long[] high = new long[BINS];
    private final int[] bin;
    private final long[] below;
    private long[][] low;
    private float[] values;

    /** Ranks (0-based, ascending order) of a vector of n elements. */
    FloatRanks(long n, long... ranks) {
        for (long k : ranks) if (k < 0 || k >= n) throw new IllegalArgumentException("k = " + k + " is outside [0, " + n + ")");
        this.ranks = ranks.clone();
        this.bin = new int[ranks.length];
        this.below = new long[ranks.length];
    }

    /**
     * First pass: the histogram of the high 16 bits of the order keys, for an op to add a chunk's
     * counts to ({@link dev.mergeforge.backend.ChunkOps#orderHistogram} with {@code high < 0}).
     */
    long[] highHistogram() {
        if (high == null) throw new IllegalStateException("high-bit histogram asked for after the first pass");
        return high;
    }

    /** After the first pass: the bin of each rank and how many elements lie in the bins below it. */
    void endHigh() {
        low = new long[ranks.length][];
        for (int r = 0; r < ranks.length; r++) {
            long cum = 0;
            int b = 0;
            // the bin holding rank k: the first whose cumulative count exceeds k
            for (; b < BINS && cum + high[b] <= ranks[r]; b++) cum += high[b];
            if (b == BINS) throw new IllegalStateException("rank " + ranks[r] + " beyond the histogram's " + cum + " values");
            bin[r] = b;
            below[r] = cum;
            // ranks in the same bin share one low-bit histogram
            for (int q = 0; q < r && low[r] == null; q++) if (bin[q] == b) low[r] = low[q];
            if (low[r] == null) low[r] = new long[BINS];
        }
        high = null;
    }

    /** After the first pass: the distinct high bins the second pass counts, in rank order. */
    int[] lowBins() {
        if (low == null) throw new IllegalStateException("low-bit bins asked for before the first pass ended");
        return Arrays.stream(bin).distinct().toArray();
    }

    /**
     * Second pass: the low-bit histogram of the elements in high bin {@code b} (one of {@link #lowBins}),
     * for an op to add a chunk's counts to ({@link dev.mergeforge.backend.ChunkOps#orderHistogram} with high = b).
     */
    long[] lowHistogram(int b) {
        for (int r = 0; r < ranks.length; r++) if (bin[r] == b) return low[r];
        throw new IllegalArgumentException("bin " + b + " holds none of the ranks");
    }

    /** After the second pass: the value at each rank. */
    void endLow() {
        values = new float[ranks.length];
        for (int r = 0; r < ranks.length; r++) {
            long cum = below[r];
            int b = 0;
            for (; b < BINS && cum + low[r][b] <= ranks[r]; b++) cum += low[r][b];
            if (b == BINS) throw new IllegalStateException("rank " + ranks[r] + " beyond the low-bit histogram's " + cum + " values");
            values[r] = FloatSelect.fromKey((bin[r] << 16) | b);
        }
        low = null;
    }

    /** The value at the r-th rank given to the constructor (after both passes). */
    float value(int r) {
        if (values == null) throw new IllegalStateException("order statistic asked for before its passes ran");
        return values[r];
    }
}
