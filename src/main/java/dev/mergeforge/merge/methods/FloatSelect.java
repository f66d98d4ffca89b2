package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.tensor.Tile;

/**
 * Exact order statistics of a float32 tile by radix selection on the float bits: two passes of a
 * 65,536-bucket histogram (high 16 bits, then low 16 bits within the chosen bucket), O(n) time and
 * a fixed 512 KiB of counts whatever the tile's size; the tile is not modified. Finite values only.
 */
final class FloatSelect {
    private FloatSelect() {}

    /** The value at index k (0-based) of the tile's values sorted ascending. */
    static float kthSmallest(Tile x, long k) {
        long n = x.size();
        if (k < 0 || k >= n) throw new IllegalArgumentException("k = " + k + " is outside [0, " + n + ")");
        long[] hist = new long[1 << 16];
        for (long i = 0; i < n; i++) hist[key(x.get(i)) >>> 16]++;
        int high = bucket(hist, k);
        long below = 0;
        for (int b = 0; b < high; b++) below += hist[b];
        java.util.Arrays.fill(hist, 0);
        for (long i = 0; i < n; i++) {
            int kk = key(x.get(i));
            if (kk >>> 16 == high) hist[kk & 0xFFFF]++;
        }
        int low = bucket(hist, k - below);
        return fromKey((high << 16) | low);
    }

    /** The bucket holding rank k: the first whose cumulative count exceeds k. */
    private static int bucket(long[] hist, long k) {
        long cum = 0;
        for (int b = 0; b < hist.length; b++) {
            cum += hist[b];
            if (cum > k) return b;
        }
        throw new IllegalStateException("rank " + k + " beyond the histogram's " + cum + " values");
    }

    /** Float bits mapped so unsigned int order is numeric order (negatives flipped, positives above). */
    static int key(float f) { return FusionLoops.orderKey(f); }

    static float fromKey(int k) {
        int b = (k & 0x80000000) != 0 ? k ^ 0x80000000 : ~k;
        return Float.intBitsToFloat(b);
    }
}
