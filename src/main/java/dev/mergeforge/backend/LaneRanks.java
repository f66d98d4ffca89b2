package dev.mergeforge.backend;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Per-lane magnitude ranks in linear time: a stable least-significant-digit radix sort of each
 * lane's indices on the key 0x7fffffff − (|x| bits), three passes of 11, 11 and 9 bits. Ascending
 * keys are descending magnitudes; stability keeps equal magnitudes in index order, which is the
 * "lower index first" tie rule of {@link Backend#laneRanks}.
 */
public final class LaneRanks {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;
    private static final int[] SHIFT = {0, 11, 22};
    private static final int[] BITS = {11, 11, 9};

    private LaneRanks() {}

    public static void run(Parallel par, Tile x, Lanes lanes, Tile out) {
        if (x.size() != out.size() || lanes.numel() != x.size()) {
            throw new IllegalArgumentException("laneRanks: " + x + ", " + out + " and lanes " + lanes + " disagree");
        }
        if (x.size() > 0 && x.data().asOverlappingSlice(out.data()).isPresent()) throw new IllegalArgumentException("laneRanks output must not alias its input");
        long len = lanes.length();
        if (len > (1L << 24)) throw new IllegalArgumentException("lane of " + len + " elements is too long for float ranks");
        if (x.size() == 0) return;
        MemorySegment s = x.data(), o = out.data();
        int n = (int) len;
        long per = Math.max(1, Parallel.CHUNK / Math.max(1, len));
        par.forRange(lanes.count(), per, (v0, v1) -> {
            int[] key = new int[n], idx = new int[n], tmpIdx = new int[n], tmpKey = new int[n];
            int[] count = new int[1 << 11];
            for (long v = v0; v < v1; v++) {
                for (int k = 0; k < n; k++) {
                    key[k] = 0x7fffffff - (s.getAtIndex(I, lanes.index(v, k)) & 0x7fffffff);
                    idx[k] = k;
                }
                int[] ck = key, ci = idx, nk = tmpKey, ni = tmpIdx;
                for (int pass = 0; pass < 3; pass++) {
                    int mask = (1 << BITS[pass]) - 1, sh = SHIFT[pass];
                    java.util.Arrays.fill(count, 0);
                    for (int k = 0; k < n; k++) count[(ck[k] >>> sh) & mask]++;
                    int sum = 0;
                    for (int b = 0; b <= mask; b++) { int c = count[b]; count[b] = sum; sum += c; }
                    for (int k = 0; k < n; k++) {
                        int d = count[(ck[k] >>> sh) & mask]++;
                        nk[d] = ck[k];
                        ni[d] = ci[k];
                    }
                    int[] t = ck; ck = nk; nk = t;
                    t = ci; ci = ni; ni = t;
                }
                for (int r = 0; r < n; r++) o.setAtIndex(F, lanes.index(v, ci[r]), (float) r);
            }
        });
    }
}
