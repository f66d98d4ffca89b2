package dev.mergeforge.backend;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ExpLog} against {@link StrictMath} within the promised 1 ulp (docs/methods.md, "Our exp
 * and log"): random arguments over the whole promised domain, log-uniform ones, the KL's own range
 * (exp of θ − max θ, log of p/q) and the edges: ±0, the cut at −708, huge negative and −∞, 1, the
 * smallest and largest normal doubles, values just around 1 and powers of two.
 */
class ExpLogTest {
    /** The promise: at most this many ulps from StrictMath (measured: 1 over 2·10^7 samples each). */
    private static final long ULPS = 1;

    private static long ulps(double a, double b) { return Math.abs(Double.doubleToRawLongBits(a) - Double.doubleToRawLongBits(b)); }

    private static void expClose(double x) {
        double got = ExpLog.exp(x), want = StrictMath.exp(x);
        assertTrue(ulps(got, want) <= ULPS, () -> "exp(" + x + ") = " + got + ", StrictMath " + want);
    }

    private static void logClose(double x) {
        double got = ExpLog.log(x), want = StrictMath.log(x);
        assertTrue(ulps(got, want) <= ULPS, () -> "log(" + x + ") = " + got + ", StrictMath " + want);
    }

    @Test
    void expWithinOneUlpOverItsDomain() {
        SplittableRandom r = new SplittableRandom(11);
        for (int i = 0; i < 1_000_000; i++) {
            expClose(-708 + r.nextDouble() * 1417);                        // uniform over [-708, 709]
            expClose(-Math.exp(r.nextDouble() * 20 - 13.8));               // log-uniform in [-708, -1e-6]: θ − max θ
            expClose((r.nextDouble() - 0.5) * 1e-3);                       // around 0, both signs
        }
        for (double x : new double[] {-708, -707.9999999, -1, -0.5 * Math.log(2), 0.5 * Math.log(2), 1, 709, -1e-300, Double.MIN_VALUE, -Double.MIN_VALUE}) expClose(x);
    }

    @Test
    void expEdges() {
        assertEquals(1.0, ExpLog.exp(0.0));
        assertEquals(1.0, ExpLog.exp(-0.0));
        // below -708: +0.0 (StrictMath's values there are under 3.3e-308)
        for (double x : new double[] {-708.0000001, -745.2, -746, -1e6, -1e300, -Double.MAX_VALUE, Double.NEGATIVE_INFINITY}) {
            assertEquals(Double.doubleToRawLongBits(0.0), Double.doubleToRawLongBits(ExpLog.exp(x)), "exp(" + x + ")");
        }
        // from -708 on, a normal double
        assertTrue(ExpLog.exp(-708) >= Double.MIN_NORMAL);
        assertTrue(Double.isNaN(ExpLog.exp(Double.NaN)));
    }

    @Test
    void logWithinOneUlpForPositiveNormals() {
        SplittableRandom r = new SplittableRandom(12);
        for (int i = 0; i < 1_000_000; i++) {
            logClose(Double.longBitsToDouble(r.nextLong(0x0010000000000000L, 0x7ff0000000000000L)));   // every positive normal, uniform in the bits
            logClose(Math.exp(r.nextDouble() * 41.4 - 20.7));                                          // p/q: about [1e-9, 1e9]
            logClose(1 + (r.nextDouble() - 0.5) * 1e-6);                                               // just around 1 (f tiny)
            logClose(r.nextDouble() * (1 + 1e-8));                                                     // (0, 1 + ε]
        }
        // around every power of two and the reduction's cut at √½·2^k (normals only)
        for (int k = -1021; k <= 1023; k++) {
            double p = Math.scalb(1.0, k);
            for (double x : new double[] {p, Math.nextUp(p), Math.nextDown(p), p * Math.sqrt(0.5), Math.nextUp(p * Math.sqrt(0.5)), Math.nextDown(p * Math.sqrt(0.5))}) logClose(x);
        }
        for (double x : new double[] {Double.MIN_NORMAL, Double.MAX_VALUE, 1e-8, 1 + 1e-8, 1e8, 1 - 1e-16, 1 + 2.220446049250313e-16}) logClose(x);
    }

    @Test
    void logEdges() {
        assertEquals(Double.doubleToRawLongBits(0.0), Double.doubleToRawLongBits(ExpLog.log(1.0)));
        assertEquals(StrictMath.log(Double.MIN_NORMAL), ExpLog.log(Double.MIN_NORMAL));
        assertEquals(StrictMath.log(2), ExpLog.log(2));
    }
}
