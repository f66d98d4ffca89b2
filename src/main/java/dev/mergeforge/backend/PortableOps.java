package dev.mergeforge.backend;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Plain-loop implementations of the {@link Backend} ops that are not on the hot path of the
 * classic methods (elementwise helpers, lane ops, probability drops). They are the reference
 * semantics of those ops: {@code JavaBackend} runs them on its own threads; a backend without its own
 * version gets them through the interface's default methods (the native backend has its own, so the
 * conformance tests compare two implementations). Work is split at fixed
 * chunk boundaries, so results never depend on the thread count.
 */
public final class PortableOps {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** The pool the interface defaults run on (the common fork-join pool). */
    public static final Parallel COMMON = new Parallel(0);

    private PortableOps() {}

    private static void same(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    @FunctionalInterface private interface Binary { float at(float a, float b); }

    private static void binary(Parallel par, Tile a, Tile b, Tile out, Binary f) {
        same(a, b); same(a, out);
        MemorySegment x = a.data(), y = b.data(), o = out.data();
        par.forRange(a.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) o.setAtIndex(F, i, f.at(x.getAtIndex(F, i), y.getAtIndex(F, i)));
        });
    }

    @FunctionalInterface private interface Unary { float at(float a); }

    private static void unary(Parallel par, Tile a, Tile out, Unary f) {
        same(a, out);
        MemorySegment x = a.data(), o = out.data();
        par.forRange(a.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) o.setAtIndex(F, i, f.at(x.getAtIndex(F, i)));
        });
    }

    public static void mul(Parallel par, Tile a, Tile b, Tile out) { binary(par, a, b, out, (x, y) -> x * y); }

    public static void div(Parallel par, Tile a, Tile b, Tile out) { binary(par, a, b, out, (x, y) -> x / y); }

    public static void abs(Parallel par, Tile x, Tile out) {
        unary(par, x, out, v -> Float.intBitsToFloat(Float.floatToRawIntBits(v) & 0x7fffffff));
    }

    public static void clamp(Parallel par, Tile x, float lo, float hi, Tile out) {
        if (!(lo <= hi)) throw new IllegalArgumentException("clamp bounds " + lo + " > " + hi);
        // NaN fails both comparisons and is kept, as torch.clamp does
        unary(par, x, out, v -> v < lo ? lo : (v > hi ? hi : v));
    }

    public static void affine(Parallel par, Tile x, float a, float b, Tile out) {
        unary(par, x, out, v -> {
            float p = a * v;
            return p + b;
        });
    }

    public static void fill(Parallel par, Tile x, float v) {
        MemorySegment o = x.data();
        par.forRange(x.size(), (lo, hi) -> { for (long i = lo; i < hi; i++) o.setAtIndex(F, i, v); });
    }

    public static void keepWhereNonZero(Parallel par, Tile x, Tile ref, Tile out) {
        binary(par, x, ref, out, (v, r) -> r == 0f ? 0f : v);
    }

    public static long countNonZero(Parallel par, Tile x) {
        long n = x.size();
        long chunks = (n + Parallel.CHUNK - 1) / Parallel.CHUNK;
        long[] counts = new long[(int) chunks];
        MemorySegment a = x.data();
        par.forRange(n, (lo, hi) -> {
            long c = 0;
            for (long i = lo; i < hi; i++) if (a.getAtIndex(F, i) != 0f || Float.isNaN(a.getAtIndex(F, i))) c++;
            counts[(int) (lo / Parallel.CHUNK)] = c;
        });
        long total = 0;
        for (long c : counts) total += c;
        return total;
    }

    // ---------------------------------------------------------------- lanes

    private static void lanesFit(Tile t, Lanes lanes) {
        if (lanes.numel() != t.size()) throw new IllegalArgumentException("lanes " + lanes + " do not cover " + t);
    }

    public static void laneDots(Parallel par, Tile a, Tile b, Lanes lanes, double[] out) {
        same(a, b); lanesFit(a, lanes);
        long count = lanes.count(), len = lanes.length();
        if (out.length < count) throw new IllegalArgumentException("laneDots needs " + count + " outputs, got " + out.length);
        MemorySegment x = a.data(), y = b.data();
        // lanes per task: about CHUNK elements of work each
        long per = Math.max(1, Parallel.CHUNK / Math.max(1, len));
        par.forRange(count, per, (v0, v1) -> {
            for (long v = v0; v < v1; v++) {
                final long lane = v;
                // the lane's terms in the canonical order along k (stripes of k within blocks, the tree, blocks left to right)
                out[(int) v] = Reductions.sum(len, k -> {
                    long i = lanes.index(lane, k);
                    return (double) x.getAtIndex(F, i) * (double) y.getAtIndex(F, i);
                });
            }
        });
    }

    public static void laneScale(Parallel par, Tile x, float[] s, Lanes lanes, Tile out) {
        same(x, out); lanesFit(x, lanes);
        if (s.length < lanes.count()) throw new IllegalArgumentException("laneScale needs " + lanes.count() + " factors, got " + s.length);
        if (x.size() == 0) return;
        MemorySegment a = x.data(), o = out.data();
        par.forRange(x.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) o.setAtIndex(F, i, s[(int) lanes.laneOf(i)] * a.getAtIndex(F, i));
        });
    }

    // ---------------------------------------------------------------- random drop, TIES divisor

    public static void dropByProbability(Parallel par, Tile x, Tile p, long key, Backend.Rescale mode) {
        same(x, p);
        MemorySegment a = x.data(), pr = p.data();
        long n = x.size();
        double before = mode == Backend.Rescale.L1 ? sumAbs(par, x) : 0.0;
        par.forRange(n, (lo, hi) -> {
            Philox.Cursor draws = new Philox.Cursor(key);
            for (long i = lo; i < hi; i++) {
                long u = draws.uniform24(i);
                float pi = pr.getAtIndex(F, i);
                if (u >= Philox.threshold24(pi)) a.setAtIndex(F, i, 0f);
                else if (mode == Backend.Rescale.DENSITY) a.setAtIndex(F, i, a.getAtIndex(F, i) / pi);
            }
        });
        if (mode == Backend.Rescale.L1) {
            double after = sumAbs(par, x);
            if (!(before < 1e-7 || after < 1e-7)) {
                float f = (float) (before / after);
                par.forRange(n, (lo, hi) -> { for (long i = lo; i < hi; i++) a.setAtIndex(F, i, f * a.getAtIndex(F, i)); });
            }
        }
    }

    /** Σ|x| in the canonical order (the same sum as {@link Backend#sumAbs}). */
    static double sumAbs(Parallel par, Tile x) {
        MemorySegment a = x.data();
        long n = x.size(), nb = Reductions.blocks(n);
        double[] partial = new double[(int) nb];
        par.forRange(nb, Math.max(1, Parallel.CHUNK / Reductions.BLOCK), (b0, b1) -> {
            for (long b = b0; b < b1; b++) {
                long lo = b * Reductions.BLOCK, hi = Math.min(n, lo + Reductions.BLOCK);
                partial[(int) b] = Reductions.block(lo, hi, i -> Math.abs((double) a.getAtIndex(F, i)));
            }
        });
        return Reductions.combine(partial);
    }

    public static void disjointDivisor(Parallel par, List<Tile> weighted, float[] w, Tile sign, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointDivisor needs one weight per input");
        for (Tile t : weighted) same(t, out);
        same(sign, out);
        MemorySegment[] in = weighted.stream().map(Tile::data).toArray(MemorySegment[]::new);
        MemorySegment sg = sign.data(), o = out.data();
        par.forRange(out.size(), (lo, hi) -> {
            for (long i = lo; i < hi; i++) {
                float s = sg.getAtIndex(F, i);
                float div = 0f;
                for (int j = 0; j < in.length; j++) {
                    float v = in[j].getAtIndex(F, i);
                    float sv = v > 0f ? 1f : (v < 0f ? -1f : 0f);
                    if (sv == s) div = div + w[j];
                }
                o.setAtIndex(F, i, div);
            }
        });
    }
}
