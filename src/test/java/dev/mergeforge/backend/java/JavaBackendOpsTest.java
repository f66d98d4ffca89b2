package dev.mergeforge.backend.java;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.RefPhilox;
import dev.mergeforge.backend.CanonicalSum;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The Java backend's ops against plain-loop references (double where the op sums). */
class JavaBackendOpsTest {
    static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    // ------------------------------------------------------------ independent 16-bit float references

    /** IEEE half bits -> value, from the definition. */
    static double halfValue(int h) {
        int s = (h >>> 15) & 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
        double v;
        if (e == 0) v = m * Math.pow(2, -24);
        else if (e == 31) v = m == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
        else v = (1 + m / 1024.0) * Math.pow(2, e - 15);
        return s == 1 ? -v : v;
    }

    /** Nearest half to f (ties to even mantissa), by searching every finite half value. */
    static int refToHalf(float f) {
        if (Float.isNaN(f)) return -1;
        double a = Math.abs((double) f);
        int sign = (Float.floatToRawIntBits(f) >>> 31) << 15;
        if (a >= 65520.0) return sign | 0x7c00;
        int best = 0;
        for (int h = 0; h < 0x7c00; h++) {
            double d = Math.abs(halfValue(h) - a), db = Math.abs(halfValue(best) - a);
            if (d < db || (d == db && (h & 1) == 0 && (best & 1) == 1)) best = h;
        }
        return sign | best;
    }

    /** Nearest bf16 to f (ties to even), choosing between the two truncation neighbours in double. */
    static int refToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int lo = bits >>> 16, hi = lo + 1;
        double vl = Float.intBitsToFloat(lo << 16), vh = Float.intBitsToFloat(hi << 16);
        if ((bits & 0xffff) == 0) return lo;
        // the neighbour above the largest finite bf16 is infinity: measure it as 2^128 (IEEE overflow rule)
        if (Double.isInfinite(vh)) vh = Math.copySign(Math.pow(2, 128), vh);
        double dl = Math.abs(f - vl), dh = Math.abs(vh - f);
        if (dl < dh) return lo & 0xffff;
        if (dh < dl) return hi & 0xffff;
        return ((lo & 1) == 0 ? lo : hi) & 0xffff;
    }

    static float[] storeLoadInputs() {
        List<Float> v = new ArrayList<>(List.of(0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, 1e-8f, -6e-8f, 5.96e-8f, 2.98e-8f,
                Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.intBitsToFloat(0x3f808000), Float.intBitsToFloat(0x3f818000), Float.intBitsToFloat(0x3f808001),
                Float.intBitsToFloat(0x3f817fff), 1 + 1f / 2048, 1 + 3f / 2048, Float.intBitsToFloat(0x7f7f8000)));
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < 300; i++) v.add((float) (r.nextGaussian() * Math.pow(2, r.nextInt(-26, 17))));
        float[] a = new float[v.size()];
        for (int i = 0; i < a.length; i++) a[i] = v.get(i);
        return a;
    }

    @Test
    void storeBf16AndF16RoundToNearestEvenIncludingTiesAndNaN() {
        float[] x = storeLoadInputs();
        try (JavaBackend b = new JavaBackend(2); Arena arena = Arena.ofConfined()) {
            for (DType dt : new DType[] {DType.BF16, DType.F16}) {
                MemorySegment dst = arena.allocate(2L * x.length);
                b.store(Tile.ofArray(x.clone()), dt, dst);
                for (int i = 0; i < x.length; i++) {
                    int got = dst.getAtIndex(S16, i) & 0xffff;
                    int exp = dt == DType.BF16 ? refToBf16(x[i]) : refToHalf(x[i]);
                    assertEquals(exp, got, dt + " of " + x[i] + " (bits " + Integer.toHexString(Float.floatToRawIntBits(x[i])) + ")");
                }
                // NaN stays NaN with its sign
                MemorySegment nan = arena.allocate(4);
                b.store(Tile.ofArray(Float.NaN, Float.intBitsToFloat(0xffc00001)), dt, nan);
                for (int i = 0; i < 2; i++) {
                    short h = nan.getAtIndex(S16, i);
                    double back = dt == DType.BF16 ? Float.intBitsToFloat((h & 0xffff) << 16) : halfValue(h & 0xffff);
                    assertTrue(Double.isNaN(back), dt + " NaN lost");
                    assertEquals(i, (h >>> 15) & 1, dt + " NaN sign");
                }
            }
        }
    }

    @Test
    void loadIsExactForBf16F16F32AndRoundsF64() {
        try (JavaBackend b = new JavaBackend(2); Arena arena = Arena.ofConfined()) {
            int n = 1 << 16;
            MemorySegment h = arena.allocate(2L * n);
            for (int i = 0; i < n; i++) h.setAtIndex(S16, i, (short) i);
            Tile t = Tile.ofArray(new float[n]);
            b.load(new TensorView("h", DType.F16, Shape.of(n), h, "test"), t);
            for (int i = 0; i < n; i++) {
                double e = halfValue(i);
                if (Double.isNaN(e)) assertTrue(Float.isNaN(t.get(i)));
                else assertEquals(e, t.get(i), 0.0, "f16 bits " + i);
            }
            b.load(new TensorView("b", DType.BF16, Shape.of(n), h, "test"), t);
            for (int i = 0; i < n; i++) {
                float e = Float.intBitsToFloat(i << 16);
                if (Float.isNaN(e)) assertTrue(Float.isNaN(t.get(i)));
                else assertEquals(e, t.get(i), 0.0f, "bf16 bits " + i);
            }
            MemorySegment d = arena.allocate(8L * 4);
            double[] dv = {0.1, -1e300, 1 + 1e-9, 3.5};
            for (int i = 0; i < 4; i++) d.setAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, dv[i]);
            Tile t4 = Tile.ofArray(new float[4]);
            b.load(new TensorView("d", DType.F64, Shape.of(4), d, "test"), t4);
            for (int i = 0; i < 4; i++) assertEquals((float) dv[i], t4.get(i), 0.0f);
        }
    }

    /** The canonical order (docs/methods.md), written out independently in {@link CanonicalSum}. */
    static double canonical(float[] a, float[] c, int kind) { return CanonicalSum.of(a, c, kind); }

    @Test
    void sumsFollowTheCanonicalOrderForAnyThreadCount() {
        SplittableRandom r = new SplittableRandom(4);
        int n = 5 * Reductions.BLOCK + 123 + 70_000;
        float[] a = new float[n], c = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(-8, 9)));
            c[i] = (float) r.nextGaussian();
        }
        for (int threads : new int[] {1, 2, 5}) {
            try (JavaBackend b = new JavaBackend(threads)) {
                Tile ta = Tile.ofArray(a), tc = Tile.ofArray(c);
                assertEquals(canonical(a, c, 0), b.sumAbs(ta), 0.0);
                assertEquals(canonical(a, c, 1), b.sumSquares(ta), 0.0);
                assertEquals(canonical(a, c, 2), b.dot(ta, tc), 0.0);
            }
        }
    }

    static float[] grid(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (r.nextInt(33) - 16) / 8f;
        return x;
    }

    @Test
    void elementwiseHelpers() {
        SplittableRandom r = new SplittableRandom(5);
        int n = 1000;
        float[] a = grid(r, n), c = grid(r, n);
        a[0] = Float.NaN;
        try (JavaBackend b = new JavaBackend(2)) {
            Tile ta = Tile.ofArray(a.clone()), tc = Tile.ofArray(c.clone()), o = Tile.ofArray(new float[n]);
            b.mul(ta, tc, o);
            for (int i = 1; i < n; i++) assertEquals((float) ((double) a[i] * c[i]), o.get(i));
            b.div(ta, tc, o);
            for (int i = 1; i < n; i++) assertEquals((float) ((double) a[i] / c[i]), o.get(i));
            b.abs(ta, o);
            for (int i = 1; i < n; i++) assertEquals(Math.abs(a[i]), o.get(i));
            b.clamp(ta, -0.5f, 1f, o);
            assertTrue(Float.isNaN(o.get(0)));
            for (int i = 1; i < n; i++) assertEquals(Math.min(Math.max(a[i], -0.5f), 1f), o.get(i));
            b.affine(ta, 0.75f, -1.5f, o);
            for (int i = 1; i < n; i++) assertEquals((float) (0.75 * a[i] - 1.5), o.get(i));
            b.fill(o, 3.25f);
            for (int i = 0; i < n; i++) assertEquals(3.25f, o.get(i));
            b.keepWhereNonZero(ta, tc, o);
            for (int i = 1; i < n; i++) assertEquals(c[i] == 0 ? 0f : a[i], o.get(i));
            long nz = 0;
            for (float v : a) if (v != 0 || Float.isNaN(v)) nz++;
            assertEquals(nz, b.countNonZero(ta));
        }
    }

    /** The flat indices of lane v for [outer, len, inner], built by explicit nested loops. */
    static int[][] laneIndices(int outer, int len, int inner) {
        int[][] idx = new int[outer * inner][len];
        for (int o = 0; o < outer; o++) for (int k = 0; k < len; k++) for (int j = 0; j < inner; j++) {
            idx[o * inner + j][k] = (o * len + k) * inner + j;
        }
        return idx;
    }

    @Test
    void laneDotsScaleAndRanks() {
        SplittableRandom r = new SplittableRandom(6);
        int[][] geoms = {{1, 30, 1}, {4, 7, 1}, {1, 6, 5}, {3, 4, 2}, {2, 1, 3}, {1, 5000, 1}};
        try (JavaBackend b = new JavaBackend(2)) {
            for (int[] g : geoms) {
                int n = g[0] * g[1] * g[2];
                Lanes lanes = new Lanes(g[0], g[1], g[2]);
                float[] a = grid(r, n), c = grid(r, n);
                int[][] idx = laneIndices(g[0], g[1], g[2]);
                double[] dots = new double[idx.length];
                b.laneDots(Tile.ofArray(a), Tile.ofArray(c), lanes, dots);
                float[] s = new float[idx.length];
                for (int v = 0; v < idx.length; v++) {
                    double e = 0;
                    for (int i : idx[v]) e += (double) a[i] * c[i];
                    assertEquals(e, dots[v], 1e-12 * Math.max(1, Math.abs(e)), "lane " + v + " of " + lanes);
                    s[v] = (v + 1) * 0.5f;
                }
                Tile o = Tile.ofArray(new float[n]);
                b.laneScale(Tile.ofArray(a), s, lanes, o);
                for (int v = 0; v < idx.length; v++) for (int i : idx[v]) assertEquals(s[v] * a[i], o.get(i));
                b.laneRanks(Tile.ofArray(a), lanes, o);
                for (int v = 0; v < idx.length; v++) {
                    Integer[] order = Arrays.stream(idx[v]).boxed().toArray(Integer[]::new);
                    Arrays.sort(order, (p, q) -> Math.abs(a[p]) != Math.abs(a[q]) ? Float.compare(Math.abs(a[q]), Math.abs(a[p])) : Integer.compare(p, q));
                    for (int rk = 0; rk < order.length; rk++) assertEquals(rk, o.get(order[rk]), "rank in lane " + v + " of " + lanes);
                }
            }
            // a single whole lane gives exactly dot()
            float[] a = grid(r, 9000), c = grid(r, 9000);
            double[] one = new double[1];
            b.laneDots(Tile.ofArray(a), Tile.ofArray(c), Lanes.whole(9000), one);
            assertEquals(b.dot(Tile.ofArray(a), Tile.ofArray(c)), one[0], 0.0);
        }
    }

    @Test
    void dropByProbabilityAndDropRescaleMatchReferencePhilox() {
        SplittableRandom r = new SplittableRandom(8);
        int n = 777;
        float[] x = grid(r, n);
        float[] p = new float[n];
        for (int i = 0; i < n; i++) p[i] = (float) r.nextDouble(0.05, 0.95);
        long key = 0x1234_5678_9abc_def0L;
        try (JavaBackend b = new JavaBackend(2)) {
            for (Backend.Rescale mode : Backend.Rescale.values()) {
                Tile t = Tile.ofArray(x.clone());
                b.dropByProbability(t, Tile.ofArray(p), key, mode);
                double before = 0, after = 0;
                double[] e = new double[n];
                for (int i = 0; i < n; i++) {
                    before += Math.abs(x[i]);
                    boolean keep = RefPhilox.keep(key, i, p[i]);
                    e[i] = keep ? (mode == Backend.Rescale.DENSITY ? x[i] / (double) p[i] : x[i]) : 0;
                    after += Math.abs(e[i]);
                }
                double f = mode == Backend.Rescale.L1 ? before / after : 1;
                for (int i = 0; i < n; i++) assertEquals(e[i] * f, t.get(i), 1e-6 * Math.max(1, Math.abs(e[i] * f)), mode + " at " + i);

                Tile u = Tile.ofArray(x.clone());
                float d = 0.3f;
                b.dropRescale(u, d, key, mode);
                after = 0;
                for (int i = 0; i < n; i++) {
                    boolean keep = RefPhilox.keep(key, i, d);
                    e[i] = keep ? (mode == Backend.Rescale.DENSITY ? x[i] / (double) d : x[i]) : 0;
                    after += Math.abs(e[i]);
                }
                f = mode == Backend.Rescale.L1 ? before / after : 1;
                for (int i = 0; i < n; i++) assertEquals(e[i] * f, u.get(i), 1e-6 * Math.max(1, Math.abs(e[i] * f)), "dropRescale " + mode + " at " + i);
            }
        }
    }

    @Test
    void disjointDivisorAndMergeAgreeWithReference() {
        SplittableRandom r = new SplittableRandom(10);
        int n = 500;
        float[][] w3 = {grid(r, n), grid(r, n), grid(r, n)};
        float[] w = {0.5f, 1.25f, -0.75f};
        try (JavaBackend b = new JavaBackend(2)) {
            List<Tile> ts = new ArrayList<>();
            for (float[] a : w3) ts.add(Tile.ofArray(a));
            Tile sign = Tile.ofArray(new float[n]), div = Tile.ofArray(new float[n]), out = Tile.ofArray(new float[n]);
            b.electSign(ts, sign);
            b.disjointDivisor(ts, w, sign, div);
            b.disjointMerge(ts, w, sign, true, out);
            for (int i = 0; i < n; i++) {
                double s = w3[0][i] + w3[1][i] + w3[2][i];
                int sg = s >= 0 ? 1 : -1;
                assertEquals(sg, sign.get(i));
                double acc = 0, dv = 0;
                for (int j = 0; j < 3; j++) {
                    if (Math.signum(w3[j][i]) == sg) { acc += w3[j][i]; dv += w[j]; }
                }
                assertEquals(dv, div.get(i), 1e-7);
                assertEquals(acc / (dv == 0 ? 1 : dv), out.get(i), 1e-6 * Math.max(1, Math.abs(acc / (dv == 0 ? 1 : dv))));
            }
        }
    }

    @Test
    void existingElementwiseOpsRoundEachStepInFloat32() {
        SplittableRandom r = new SplittableRandom(12);
        int n = 70_000; // two parallel chunks
        float[] a = new float[n], c = new float[n], e = new float[n];
        for (int i = 0; i < n; i++) { a[i] = (float) r.nextGaussian(); c[i] = (float) r.nextGaussian(); e[i] = (float) r.nextGaussian(); }
        float[] w = {0.3f, -1.7f, 2.5f};
        try (JavaBackend b = new JavaBackend(3)) {
            Tile o = Tile.ofArray(new float[n]);
            b.weightedSum(List.of(Tile.ofArray(a), Tile.ofArray(c), Tile.ofArray(e)), w, o);
            for (int i = 0; i < n; i++) {
                float acc = w[0] * a[i];
                acc = acc + w[1] * c[i];
                acc = acc + w[2] * e[i];
                assertEquals(acc, o.get(i), "weightedSum at " + i);
            }
            b.lerp(Tile.ofArray(a), Tile.ofArray(c), 0.3f, o);
            for (int i = 0; i < n; i++) assertEquals((1f - 0.3f) * a[i] + 0.3f * c[i], o.get(i), "lerp at " + i);
            Tile y = Tile.ofArray(c.clone());
            b.axpy(-0.7f, Tile.ofArray(a), y);
            for (int i = 0; i < n; i++) assertEquals(c[i] + (-0.7f * a[i]), y.get(i), "axpy at " + i);
            b.sub(Tile.ofArray(a), Tile.ofArray(c), o);
            for (int i = 0; i < n; i++) assertEquals(a[i] - c[i], o.get(i));
            b.add(Tile.ofArray(a), Tile.ofArray(c), o);
            for (int i = 0; i < n; i++) assertEquals(a[i] + c[i], o.get(i));
            b.scale(Tile.ofArray(a), 1.1f, o);
            for (int i = 0; i < n; i++) assertEquals(1.1f * a[i], o.get(i));
        }
    }

    @Test
    void relaxAlongEveryAxis() {
        SplittableRandom r = new SplittableRandom(13);
        int rows = 5, cols = 7, n = rows * cols;
        float[] base = new float[n], merged = new float[n];
        for (int i = 0; i < n; i++) { base[i] = (float) r.nextGaussian(); merged[i] = (float) r.nextGaussian(); }
        try (JavaBackend b = new JavaBackend(2)) {
            for (Backend.Axis axis : Backend.Axis.values()) {
                int channels = switch (axis) { case COLUMNS -> cols; case ROWS -> rows; case ELEMENTS -> n; };
                float[] imp = new float[channels];
                for (int c = 0; c < channels; c++) imp[c] = (float) r.nextDouble();
                Tile o = Tile.ofArray(Shape.of(rows, cols), new float[n]);
                b.relax(Tile.ofArray(Shape.of(rows, cols), base), Tile.ofArray(Shape.of(rows, cols), merged), Tile.ofArray(imp), 0.4f, axis, o);
                for (int i = 0; i < n; i++) {
                    int c = switch (axis) { case COLUMNS -> i % cols; case ROWS -> i / cols; case ELEMENTS -> i; };
                    double exp = base[i] + (merged[i] - (double) base[i]) * (1 - 0.6 * imp[c]);
                    assertEquals(exp, o.get(i), 1e-6 * Math.max(1, Math.abs(exp)), axis + " at " + i);
                }
            }
        }
    }
}
