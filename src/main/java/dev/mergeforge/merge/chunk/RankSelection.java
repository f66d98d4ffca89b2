package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.tensor.Tile;

/**
 * Exact selection of the descending magnitude ranks [from, to) of one tensor-sized vector, found
 * by two histogram passes over its chunks (docs/methods.md, "Magnitude ranks"): the 15 high bits of
 * |x| place each end's rank in a bin, the 16 low bits of the elements in that bin give the exact
 * k-th magnitude and how many elements are strictly larger. Equal magnitudes rank by lower flat index
 * first, which the {@link RankWindow} applies with tie counts carried from chunk to chunk — the bits
 * of the whole-tensor {@code keepRankRange}.
 */
public final class RankSelection {
    private static final int HIGH_BINS = 1 << 15, LOW_BINS = 1 << 16;

    private final long from, to;
    private final boolean hasUpper;
    private RankWindow window;
    private long[] high;
    private int binUp, binDn;
    private long greaterUp, greaterDn;
    private long[] lowUp, lowDn;

    /** Ranks [from, to) of a vector of n elements, clamped to [0, n) as {@code keepRankRange} does. */
    public RankSelection(long n, long from, long to) {
        this.from = Math.max(0, from);
        this.to = Math.min(n, to);
        this.hasUpper = this.from > 0;
        if (this.to <= this.from) window = RankWindow.NONE;
        else if (this.from == 0 && this.to == n) window = RankWindow.ALL;
        else high = new long[HIGH_BINS];
    }

    /** Whether histogram passes are needed (false: the window is known already). */
    public boolean needsPasses() { return window == null; }

    /** First pass done elsewhere: adopts a high-bit histogram of the whole vector (2^15 bins). */
    public void high(long[] hist) {
        if (hist.length != HIGH_BINS) throw new IllegalArgumentException("high-bit histogram of " + hist.length + " bins");
        System.arraycopy(hist, 0, high, 0, HIGH_BINS);
    }

    /** First pass: the high bits of one chunk. */
    public void high(ChunkOps ops, Tile x) { ops.absHistogram(x, -1, high); }

    /** After the first pass: the bins holding the two ends. */
    public void endHigh() {
        if (hasUpper) {
            long[] g = new long[1];
            binUp = bin(high, from, 0, g);
            greaterUp = g[0];
            lowUp = new long[LOW_BINS];
        }
        long[] g = new long[1];
        binDn = bin(high, to - 1, 0, g);
        greaterDn = g[0];
        lowDn = new long[LOW_BINS];
        high = null;
    }

    /** Second pass: the low bits of one chunk's elements in the end bins. */
    public void low(ChunkOps ops, Tile x) {
        if (hasUpper) ops.absHistogram(x, binUp, lowUp);
        ops.absHistogram(x, binDn, lowDn);
    }

    /** After the second pass: the window. */
    public void endLow() {
        int vUp = Integer.MAX_VALUE;
        long skipUp = 0;
        if (hasUpper) {
            long[] g = {0};
            int low = bin(lowUp, from, greaterUp, g);
            vUp = (binUp << 16) | low;
            // of the entries equal to the value at rank from, the first (from - greater) are dropped
            skipUp = from - g[0];
        }
        long[] g = {0};
        int low = bin(lowDn, to - 1, greaterDn, g);
        int vDn = (binDn << 16) | low;
        // of the entries equal to the value at rank to - 1, the first (to - greater) are kept
        window = new RankWindow(false, false, hasUpper, vUp, skipUp, vDn, to - g[0]);
        lowUp = lowDn = null;
    }

    /** The window (after the passes, or at once when none were needed). */
    public RankWindow window() {
        if (window == null) throw new IllegalStateException("rank window asked for before its passes ran");
        return window;
    }

    /** The highest bin b such that (greater + count of bins above b) ≤ r &lt; that + hist[b]; greater[0] = the count above it. */
    private static int bin(long[] hist, long r, long greater, long[] greaterOut) {
        int b = hist.length - 1;
        for (; b >= 0; b--) {
            if (greater + hist[b] > r) break;
            greater += hist[b];
        }
        if (b < 0) throw new IllegalStateException("rank " + r + " lies beyond the histogram's " + greater + " elements");
        greaterOut[0] = greater;
        return b;
    }
}
