package dev.mergeforge.backend;

import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reference chunk ops of Arcee Fusion ({@link FusionLoops} through {@link JavaChunkOps}) against
 * straightforward loops written here: the KL with {@link Math#exp}/{@link Math#log} and plain
 * left-to-right sums (within a tight tolerance: the two differ only by rounding), the importances
 * and the combine formula by formula, the order-key histograms against a sort.
 */
class FusionLoopsTest {
    private static final Parallel PAR = new Parallel(2);
    private static final JavaChunkOps OPS = new JavaChunkOps(PAR);

    @AfterAll static void stop() { PAR.shutdown(); }

    /** KL(softmax(o) + ε ‖ softmax(b) + ε) of one row, the plain way with compensated sums; [1] = Σ|term| (the scale of its rounding). */
    private static double[] plainKl(float[] b, float[] o, int at, int cols) {
        double mb = Double.NEGATIVE_INFINITY, mo = Double.NEGATIVE_INFINITY;
        for (int j = at; j < at + cols; j++) { mb = Math.max(mb, b[j]); mo = Math.max(mo, o[j]); }
        double[] sb = new double[2], so = new double[2], kl = new double[2];
        for (int j = at; j < at + cols; j++) { add(sb, Math.exp(b[j] - mb)); add(so, Math.exp(o[j] - mo)); }
        double mag = 0;
        for (int j = at; j < at + cols; j++) {
            double p = Math.exp(o[j] - mo) / (so[0] + so[1]) + 1e-8, q = Math.exp(b[j] - mb) / (sb[0] + sb[1]) + 1e-8;
            add(kl, p * Math.log(p / q));
            mag += Math.abs(p * Math.log(p / q));
        }
        return new double[] {kl[0] + kl[1], mag};
    }

    /** Neumaier's compensated sum: s[0] the sum, s[1] the rounding errors so far. */
    private static void add(double[] s, double v) {
        double t = s[0] + v;
        s[1] += Math.abs(s[0]) >= Math.abs(v) ? (s[0] - t) + v : (v - t) + s[0];
        s[0] = t;
    }

    @Test
    void rowKlIsTheKlToRounding() {
        for (FusionCases.Case c : FusionCases.cases(false)) {
            double[] kl = new double[c.rows()];
            OPS.rowKl(Tile.ofArray(c.base()), Tile.ofArray(c.other()), c.cols(), kl);
            for (int r = 0; r < c.rows(); r++) {
                double[] want = plainKl(c.base(), c.other(), r * c.cols(), c.cols());
                // a few double roundings per term; p and q themselves rounded, so log(p/q) off by a few
                // 2^-53 whatever p/q, weighted by p (Σp ≈ 1); and the canonical sums' own rounding (at
                // most 64 terms a stripe, the 6-level tree, a block sum per 4,096), which moves every
                // log(p/q) by the relative error of sb or so: together under 100·2^-52
                double tol = 1e-13 * want[1] + 100 * 0x1p-52;
                assertTrue(Math.abs(kl[r] - want[0]) <= tol, c.name() + " row " + r + ": " + kl[r] + " vs " + want[0] + " (tolerance " + tol + ")");
            }
        }
    }

    @Test
    void equalRowsHaveKlZero() {
        float[] b = {0.5f, -1f, 3f, 0f, -0f, 2f};
        double[] kl = new double[2];
        OPS.rowKl(Tile.ofArray(b), Tile.ofArray(b.clone()), 3, kl);
        assertEquals(Double.doubleToRawLongBits(0.0), Double.doubleToRawLongBits(kl[0]));
        assertEquals(Double.doubleToRawLongBits(0.0), Double.doubleToRawLongBits(kl[1]));
    }

    @Test
    void aRowHoldingNaNOrPlusInfinityHasKlNaN() {
        float[] b = {0.5f, Float.NaN, 3f, 1f, Float.POSITIVE_INFINITY, 2f, 1f, Float.NEGATIVE_INFINITY, 2f}, o = {0.5f, 1f, 3f, 1f, 2f, 2f, 1f, 2f, 2f};
        double[] kl = new double[3];
        OPS.rowKl(Tile.ofArray(b), Tile.ofArray(o), 3, kl);
        assertEquals(Double.doubleToRawLongBits(Double.NaN), Double.doubleToRawLongBits(kl[0]));
        assertEquals(Double.doubleToRawLongBits(Double.NaN), Double.doubleToRawLongBits(kl[1]));
        // -∞ only makes its exponential 0
        assertTrue(Double.isFinite(kl[2]) && kl[2] > 0, "KL " + kl[2]);
    }

    @Test
    void importanceAndCombineAreTheirFormulas() {
        for (FusionCases.Case c : FusionCases.cases(true)) {
            float[] kl = FusionCases.kls(c.rows(), c.cols());
            float[] b = c.base(), o = c.other();
            float[] imp = new float[b.length];
            OPS.fusionImportance(Tile.ofArray(b), Tile.ofArray(o), c.cols(), kl, Tile.ofArray(imp));
            for (float t : new float[] {0f, -0f, 1e-6f, -1e-9f, Float.NaN}) {
                float[] out = new float[b.length];
                OPS.fusionCombine(Tile.ofArray(b), Tile.ofArray(o), c.cols(), kl, t, Tile.ofArray(out));
                for (int i = 0; i < b.length; i++) {
                    float d = o[i] - b[i], k = kl[i / c.cols()];
                    assertEquals(Float.floatToRawIntBits(Math.abs(d) * k), Float.floatToRawIntBits(imp[i]), c.name() + " importance " + i);
                    float want = (Math.abs(d) * k >= t) ? b[i] + d * 1f : b[i] + d * 0f;
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(out[i]), c.name() + " combine " + i + " at t " + t);
                }
            }
        }
    }

    @Test
    void orderKeysSortLikeNumbersWithMinusZeroBelowPlusZero() {
        float[] v = {-Float.MAX_VALUE, -1f, -1e-30f, -Float.MIN_VALUE, -0f, 0f, Float.MIN_VALUE, 1e-30f, 1f, Float.MAX_VALUE};
        for (int i = 1; i < v.length; i++) {
            assertTrue(Integer.compareUnsigned(FusionLoops.orderKey(v[i - 1]), FusionLoops.orderKey(v[i])) < 0, v[i - 1] + " before " + v[i]);
        }
    }

    @Test
    void orderHistogramsCountTheKeys() {
        float[] x = new float[70_001];
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        for (int i = 0; i < x.length; i++) x[i] = switch (r.nextInt(5)) { case 0 -> -0f; case 1 -> 0f; case 2 -> -1e-9f * r.nextInt(4); default -> (float) r.nextGaussian(); };
        long[] high = new long[FusionLoops.BINS];
        OPS.orderHistogram(Tile.ofArray(x), -1, high);
        long[] want = new long[FusionLoops.BINS];
        for (float f : x) want[FusionLoops.orderKey(f) >>> 16]++;
        assertEquals(Arrays.toString(want), Arrays.toString(high));
        for (int bin : new int[] {FusionLoops.orderKey(-0f) >>> 16, FusionLoops.orderKey(0f) >>> 16, FusionLoops.orderKey(-1e-9f) >>> 16, 0}) {
            long[] low = new long[FusionLoops.BINS], lowWant = new long[FusionLoops.BINS];
            OPS.orderHistogram(Tile.ofArray(x), bin, low);
            for (float f : x) if (FusionLoops.orderKey(f) >>> 16 == bin) lowWant[FusionLoops.orderKey(f) & 0xffff]++;
            assertEquals(Arrays.toString(lowWant), Arrays.toString(low), "bin " + bin);
        }
    }
}
