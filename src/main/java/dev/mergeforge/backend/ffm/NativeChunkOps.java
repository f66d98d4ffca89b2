package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The native backend's chunk ops. Conversion, elementwise arithmetic, sign election, the disjoint
 * merge and whole-block reductions call libmergeops (through the {@link NativeBackend} that owns
 * this object); the ops the C library does not have yet — histograms, the rank window with carried
 * tie counts, Philox drops at an element offset, float division and the reduction runs that continue
 * a block begun in the previous chunk — are plain per-chunk loops written here, independent of the
 * Java reference they are tested against.
 */
final class NativeChunkOps implements ChunkOps {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;

    private final NativeBackend nb;

    NativeChunkOps(NativeBackend nb) { this.nb = nb; }

    @Override public String name() { return "native"; }

    /** Host memory only: the caller's budget already sized the chunk. */
    @Override public long fitChunk(String tensor, int tiles, long align, long wanted) { return wanted; }

    /** Every load reads the stored bytes on the host. */
    @Override public boolean holds(TensorView src, long from, long n) { return false; }

    /** Chunk tiles live in host memory: nothing to move. */
    @Override public void onHost(List<Tile> reads, List<Tile> writes, Runnable body) { body.run(); }

    private static Tile piece(Tile x, long from, long count) {
        return new Tile(x.data().asSlice(from * 4, count * 4), Shape.of(count));
    }

    @Override
    public boolean load(TensorView src, long from, Tile dst) {
        long n = dst.size(), b = src.dtype().byteSize();
        if (from < 0 || from + n > src.numel()) throw new IllegalArgumentException("load " + src.name() + " [" + from + ", " + (from + n) + ") of " + src.numel());
        TensorView part = new TensorView(src.name(), src.dtype(), Shape.of(n), src.data().asSlice(from * b, n * b), src.source());
        return nb.loadChecked(part, dst);
    }

    @Override public void store(Tile src, DType dtype, MemorySegment dst) { nb.store(src, dtype, dst); }

    @Override public void sub(Tile a, Tile b, Tile out) { nb.sub(a, b, out); }

    @Override public void add(Tile a, Tile b, Tile out) { nb.add(a, b, out); }

    @Override public void scale(Tile x, float s, Tile out) { nb.scale(x, s, out); }

    @Override
    public void divide(Tile x, float d, Tile out) {
        if (x.size() != out.size()) throw new IllegalArgumentException("size mismatch: " + x + " vs " + out);
        MemorySegment a = x.data(), o = out.data();
        for (long i = 0, n = x.size(); i < n; i++) o.setAtIndex(F, i, a.getAtIndex(F, i) / d);
    }

    @FunctionalInterface private interface Binary { float at(float a, float b); }

    @FunctionalInterface private interface Unary { float at(float a); }

    private static void each(Tile a, Tile b, Tile out, Binary f) {
        if (a.size() != b.size() || a.size() != out.size()) throw new IllegalArgumentException("size mismatch: " + a + ", " + b + ", " + out);
        MemorySegment x = a.data(), y = b.data(), o = out.data();
        for (long i = 0, n = a.size(); i < n; i++) o.setAtIndex(F, i, f.at(x.getAtIndex(F, i), y.getAtIndex(F, i)));
    }

    private static void each(Tile a, Tile out, Unary f) {
        if (a.size() != out.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + out);
        MemorySegment x = a.data(), o = out.data();
        for (long i = 0, n = a.size(); i < n; i++) o.setAtIndex(F, i, f.at(x.getAtIndex(F, i)));
    }

    @Override
    public void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointDivisor needs one weight per input");
        MemorySegment sg = sign.data(), o = out.data();
        for (long i = 0, n = out.size(); i < n; i++) {
            float s = sg.getAtIndex(F, i), div = 0f;
            for (int j = 0; j < w.length; j++) {
                float v = weighted.get(j).data().getAtIndex(F, i);
                // the sign of v (0 for either zero) against the elected sign
                if (Math.signum(v) == s && v == v) div = div + w[j];
            }
            o.setAtIndex(F, i, div);
        }
    }

    @Override public void keepWhereNonZero(Tile x, Tile ref, Tile out) { each(x, ref, out, (v, r) -> r == 0f ? 0f : v); }

    @Override public void mul(Tile a, Tile b, Tile out) { each(a, b, out, (x, y) -> x * y); }

    @Override public void div(Tile a, Tile b, Tile out) { each(a, b, out, (x, y) -> x / y); }

    @Override public void abs(Tile x, Tile out) { each(x, out, v -> Math.abs(v)); }

    @Override
    public void clamp(Tile x, float lo, float hi, Tile out) {
        if (!(lo <= hi)) throw new IllegalArgumentException("clamp bounds " + lo + " > " + hi);
        // comparisons, not min/max: -0.0 against a bound of 0 stays -0.0, and NaN fails both and is kept
        each(x, out, v -> v < lo ? lo : (v > hi ? hi : v));
    }

    @Override
    public void fill(Tile x, float v) {
        MemorySegment o = x.data();
        for (long i = 0, n = x.size(); i < n; i++) o.setAtIndex(F, i, v);
    }

    @Override
    public void affine(Tile x, float a, float b, Tile out) {
        if (x.size() != out.size()) throw new IllegalArgumentException("size mismatch: " + x + " vs " + out);
        MemorySegment s = x.data(), o = out.data();
        for (long i = 0, n = x.size(); i < n; i++) {
            float p = a * s.getAtIndex(F, i);
            o.setAtIndex(F, i, p + b);
        }
    }

    @Override public void weightedSum(List<Tile> xs, float[] w, Tile out) { nb.weightedSum(xs, w, out); }

    @Override public void lerp(Tile a, Tile b, float t, Tile out) { nb.lerp(a, b, t, out); }

    @Override public void electSign(List<Tile> weighted, Tile sign) { nb.electSign(weighted, sign); }

    @Override public void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) { nb.disjointMerge(weighted, w, sign, normalize, out); }

    /** Which whole-tensor reduction a run uses, and the same term for runs continuing a block. */
    private interface Whole { double of(Tile a, Tile b); }

    private interface Term { double at(long i); }

    /** Runs cut at block edges: one that continues an open block is summed here from its open sum, each fresh one by one native call (a single block sums from 0.0). */
    private static void reduce(Tile a, Tile b, long offset, BlockSum acc, Whole whole, Term term) {
        long n = a.size(), lo = 0;
        while (lo < n) {
            long at = offset + lo;
            long len = Math.min(n - lo, Reductions.BLOCK - at % Reductions.BLOCK);
            double s;
            if (at % Reductions.BLOCK != 0) {
                s = acc.start();
                for (long i = lo; i < lo + len; i++) s += term.at(i);
            } else {
                s = whole.of(piece(a, lo, len), b == null ? null : piece(b, lo, len));
            }
            acc.addRun(at, len, s);
            lo += len;
        }
    }

    @Override
    public void sumAbs(Tile x, long offset, BlockSum acc) {
        MemorySegment a = x.data();
        reduce(x, null, offset, acc, (p, q) -> nb.sumAbs(p), i -> Math.abs((double) a.getAtIndex(F, i)));
    }

    @Override
    public void sumSquares(Tile x, long offset, BlockSum acc) {
        MemorySegment a = x.data();
        reduce(x, null, offset, acc, (p, q) -> nb.sumSquares(p), i -> { double v = a.getAtIndex(F, i); return v * v; });
    }

    @Override
    public void dot(Tile x, Tile y, long offset, BlockSum acc) {
        if (x.size() != y.size()) throw new IllegalArgumentException("size mismatch: " + x + " vs " + y);
        MemorySegment a = x.data(), b = y.data();
        reduce(x, y, offset, acc, nb::dot, i -> (double) a.getAtIndex(F, i) * (double) b.getAtIndex(F, i));
    }

    @Override
    public void absHistogram(Tile x, int high, long[] hist) {
        if (hist.length != (high < 0 ? 1 << 15 : 1 << 16)) throw new IllegalArgumentException("histogram of " + hist.length + " bins");
        MemorySegment s = x.data();
        for (long i = 0, n = x.size(); i < n; i++) {
            int a = s.getAtIndex(I, i) & 0x7fffffff;
            if (high < 0) hist[a >>> 16]++;
            else if ((a >>> 16) == high) hist[a & 0xffff]++;
        }
    }

    @Override
    public void keepRanks(Tile x, RankWindow w, long[] seen) {
        MemorySegment s = x.data();
        long cu = seen[0], cd = seen[1];
        for (long i = 0, n = x.size(); i < n; i++) {
            int a = s.getAtIndex(I, i) & 0x7fffffff;
            if (!w.keeps(a, cu, cd)) s.setAtIndex(F, i, 0f);
            if (a == w.upper()) cu++;
            if (a == w.lower()) cd++;
        }
        seen[0] = cu;
        seen[1] = cd;
    }

    @Override
    public void laneDots(Tile a, Tile b, Lanes lanes, double[] out) {
        if (a.size() != b.size() || lanes.numel() != a.size() || out.length < lanes.count()) throw new IllegalArgumentException("laneDots: " + a + ", " + b + ", " + lanes);
        MemorySegment x = a.data(), y = b.data();
        for (long v = 0, n = lanes.count(); v < n; v++) {
            // the lane's own elements in blocks of BLOCK, each summed from 0.0, the block sums added from 0.0
            double total = 0.0, block = 0.0;
            for (long k = 0, len = lanes.length(); k < len; k++) {
                if (k > 0 && k % Reductions.BLOCK == 0) { total += block; block = 0.0; }
                long i = lanes.index(v, k);
                block += (double) x.getAtIndex(F, i) * (double) y.getAtIndex(F, i);
            }
            out[(int) v] = lanes.length() == 0 ? 0.0 : total + block;
        }
    }

    @Override
    public void carriedLaneDots(Tile a, Tile b, Lanes lanes, long first, BlockSum[] acc) {
        if (a.size() != b.size() || lanes.numel() != a.size() || acc.length < lanes.count() || first < 0) {
            throw new IllegalArgumentException("carriedLaneDots: " + a + ", " + b + ", " + lanes + " from " + first);
        }
        for (long v = 0, n = lanes.count(); v < n; v++) {
            if (acc[(int) v].next() != first) throw new IllegalStateException("lane " + v + " fed out of order: element " + first + ", expected " + acc[(int) v].next());
        }
        MemorySegment x = a.data(), y = b.data();
        for (long v = 0, n = lanes.count(); v < n; v++) {
            BlockSum s = acc[(int) v];
            // element k of the lane is element first + k of the whole lane: a run ends where its block does
            double run = s.start();
            long runStart = first;
            for (long k = 0, len = lanes.length(); k < len; k++) {
                long at = first + k;
                if (at > runStart && at % Reductions.BLOCK == 0) {
                    s.addRun(runStart, at - runStart, run);
                    run = 0.0;
                    runStart = at;
                }
                long i = lanes.index(v, k);
                run += (double) x.getAtIndex(F, i) * (double) y.getAtIndex(F, i);
            }
            s.addRun(runStart, first + lanes.length() - runStart, run);
        }
    }

    @Override
    public void laneScale(Tile x, float[] s, Lanes lanes, Tile out) {
        if (x.size() != out.size() || lanes.numel() != x.size() || s.length < lanes.count()) throw new IllegalArgumentException("laneScale: " + x + ", " + lanes);
        MemorySegment a = x.data(), o = out.data();
        for (long v = 0, n = lanes.count(); v < n; v++) {
            for (long k = 0, len = lanes.length(); k < len; k++) {
                long i = lanes.index(v, k);
                o.setAtIndex(F, i, s[(int) v] * a.getAtIndex(F, i));
            }
        }
    }

    /** Ranks by sorting each lane's (descending |x| bits, index) keys: a plain comparison sort, independent of the reference's radix sort. */
    @Override
    public void laneRanks(Tile x, Lanes lanes, Tile out) {
        if (x.size() != out.size() || lanes.numel() != x.size()) throw new IllegalArgumentException("laneRanks: " + x + ", " + out + " and lanes " + lanes + " disagree");
        if (lanes.length() > (1L << 24)) throw new IllegalArgumentException("lane of " + lanes.length() + " elements is too long for float ranks");
        MemorySegment s = x.data(), o = out.data();
        int len = (int) lanes.length();
        long[] keys = new long[len];
        for (long v = 0, n = lanes.count(); v < n; v++) {
            for (int k = 0; k < len; k++) {
                long bits = s.getAtIndex(I, lanes.index(v, k)) & 0x7fffffffL;
                keys[k] = ((0x7fffffffL - bits) << 32) | k;
            }
            java.util.Arrays.sort(keys);
            for (int r = 0; r < len; r++) o.setAtIndex(F, lanes.index(v, (int) keys[r]), (float) r);
        }
    }

    @Override
    public void dropByProbability(Tile x, Tile p, long offset, long key) {
        if (x.size() != p.size()) throw new IllegalArgumentException("size mismatch: " + x + " vs " + p);
        MemorySegment a = x.data(), pr = p.data();
        // each element's draw depends only on (key, offset + i): any split over threads gives the same bits
        nb.parallel().forRange(x.size(), (lo, hi) -> {
            Philox.Cursor draws = new Philox.Cursor(key);
            for (long i = lo; i < hi; i++) if (draws.uniform24(offset + i) >= Philox.threshold24(pr.getAtIndex(F, i))) a.setAtIndex(F, i, 0f);
        });
    }

    @Override
    public void dropRandom(Tile x, long offset, float density, long key) {
        MemorySegment a = x.data();
        long thr = Philox.threshold24(density);
        nb.parallel().forRange(x.size(), (lo, hi) -> {
            Philox.Cursor draws = new Philox.Cursor(key);
            for (long i = lo; i < hi; i++) if (draws.uniform24(offset + i) >= thr) a.setAtIndex(F, i, 0f);
        });
    }
}
