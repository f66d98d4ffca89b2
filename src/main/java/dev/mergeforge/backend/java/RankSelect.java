package dev.mergeforge.backend.java;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Magnitude-rank selection without sorting: a two-pass radix select on the bits of |x| (for
 * non-negative floats the bit pattern orders like the value), 15 high bits then 16 low bits.
 * O(n) per selected rank, exact, deterministic.
 */
final class RankSelect {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;

    private RankSelect() {}

    /** |x| as ordered bits. */
    static int absBits(MemorySegment s, long i) { return s.getAtIndex(I, i) & 0x7fffffff; }

    /** The value (as |x| bits) at descending rank r, and how many elements are strictly larger. */
    record Selected(int bits, long greater) {}

    static Selected select(Parallel par, MemorySegment s, long n, long r) {
        long chunk = Math.max(Parallel.CHUNK, n / 64 + 1);
        long[] hiHist = new long[1 << 15];
        par.forRange(n, chunk, (lo, hi) -> {
            long[] h = new long[1 << 15];
            for (long i = lo; i < hi; i++) h[absBits(s, i) >>> 16]++;
            synchronized (hiHist) { for (int b = 0; b < h.length; b++) hiHist[b] += h[b]; }
        });
        long greater = 0;
        int bin = hiHist.length - 1;
        for (; bin >= 0; bin--) {
            if (greater + hiHist[bin] > r) break;
            greater += hiHist[bin];
        }
        final int top = bin;
        long[] loHist = new long[1 << 16];
        par.forRange(n, chunk, (lo, hi) -> {
            long[] h = new long[1 << 16];
            boolean any = false;
            for (long i = lo; i < hi; i++) {
                int a = absBits(s, i);
                if ((a >>> 16) == top) { h[a & 0xffff]++; any = true; }
            }
            if (any) synchronized (loHist) { for (int b = 0; b < h.length; b++) loHist[b] += h[b]; }
        });
        int low = loHist.length - 1;
        for (; low >= 0; low--) {
            if (greater + loHist[low] > r) break;
            greater += loHist[low];
        }
        return new Selected((top << 16) | low, greater);
    }

    static void keepRankRange(Parallel par, Tile x, long from, long to) {
        MemorySegment s = x.data();
        long n = x.size();
        long f = Math.max(0, from), t = Math.min(n, to);
        if (t <= f) {
            par.forRange(n, (lo, hi) -> { for (long i = lo; i < hi; i++) s.setAtIndex(F, i, 0f); });
            return;
        }
        if (f == 0 && t == n) return;
        // Upper boundary: entries larger than the value at rank f are dropped, and of the entries
        // equal to it only those past the first (f - greater) in index order are kept.
        final boolean hasUpper = f > 0;
        Selected up = hasUpper ? select(par, s, n, f) : new Selected(Integer.MAX_VALUE, 0);
        Selected dn = select(par, s, n, t - 1);
        final int vUp = up.bits(), vDn = dn.bits();
        final long skipUp = f - up.greater();   // equal-to-vUp entries to drop (lowest indices first)
        final long keepDn = t - dn.greater();   // equal-to-vDn entries to keep (lowest indices first)
        long chunk = Parallel.CHUNK;
        int chunks = (int) ((n + chunk - 1) / chunk);
        long[] eqUp = new long[chunks], eqDn = new long[chunks];
        par.forRange(n, chunk, (lo, hi) -> {
            long cu = 0, cd = 0;
            for (long i = lo; i < hi; i++) {
                int a = absBits(s, i);
                if (hasUpper && a == vUp) cu++;
                if (a == vDn) cd++;
            }
            eqUp[(int) (lo / chunk)] = cu;
            eqDn[(int) (lo / chunk)] = cd;
        });
        long[] startUp = new long[chunks], startDn = new long[chunks];
        for (int c = 1; c < chunks; c++) {
            startUp[c] = startUp[c - 1] + eqUp[c - 1];
            startDn[c] = startDn[c - 1] + eqDn[c - 1];
        }
        par.forRange(n, chunk, (lo, hi) -> {
            long cu = startUp[(int) (lo / chunk)], cd = startDn[(int) (lo / chunk)];
            for (long i = lo; i < hi; i++) {
                int a = absBits(s, i);
                boolean keep = a <= vUp && a >= vDn;
                if (hasUpper && a == vUp) {
                    if (cu < skipUp) keep = false;
                    cu++;
                }
                if (a == vDn) {
                    if (cd >= keepDn) keep = false;
                    cd++;
                }
                if (!keep) s.setAtIndex(F, i, 0f);
            }
        });
    }
}
