package dev.mergeforge.backend;

/**
 * Our own exp and log in double (docs/methods.md, "Our exp and log"): fixed sequences of IEEE double
 * additions, multiplications, one division (log) and integer operations on the bits, with no fused
 * multiply-add and no table, so the native library ({@code native/src/explog.h}, compiled with
 * {@code -ffp-contract=off}) and any other backend that performs the same operations in the same
 * order gets the same bits for every input — which {@link Math#exp} and {@link Math#log} do not promise.
 *
 * <p>Promised (measured against {@link StrictMath} by {@code ExpLogTest}, see docs/methods.md):
 * <ul>
 *   <li>{@link #exp}: within 1 ulp for x in [-708, 709]; x &lt; -708 (and -∞) gives +0.0 (where
 *       StrictMath gives values below 3.3e-308, subnormals from -708.4 on); exp(±0) = 1 exactly.
 *       x &gt; 709 and NaN: unspecified (the KL never meets them: its arguments are θ − max θ ≤ 0).</li>
 *   <li>{@link #log}: within 1 ulp for positive normal x (x ≥ 2^-1022, finite); log(1) = +0.0.
 *       Zero, negatives, subnormals, ∞ and NaN: unspecified (the KL takes the log of p/q, both in
 *       [1e-8, 1 + 1e-8], so of values in about [1e-8, 1e8]).</li>
 * </ul>
 */
public final class ExpLog {
    private ExpLog() {}

    /** 1/ln 2 rounded to double. */
    static final double LOG2E = 0x1.71547652b82fep0;
    /** ln 2 cut to its 42 leading bits (n·LN2_HI exact for |n| ≤ 2^11), and the rest rounded. */
    static final double LN2_HI = 0x1.62e42fefa38p-1, LN2_LO = 0x1.ef35793c7673p-45;
    /** 1.5·2^52: x + SHIFTER rounds x to an integer held in the low bits of the sum (|x| &lt; 2^51). */
    static final double SHIFTER = 0x1.8p52;
    /** Below this, exp returns +0.0; from it on, 2^n stays a normal double. */
    static final double EXP_LOW = -708.0;
    /** The fraction bits of √½ rounded to double: log's reduction puts m in [√½, √2). */
    static final long SQRT_HALF_FRACTION = 0x6a09e667f3bcdL;
    /** 2^52 + 1022: (2^52 + biased exponent) − this is the exponent k, exactly. */
    static final double EXPONENT_BIAS = 0x1.00000000003fep52;

    /**
     * e^x. x = n·ln 2 + r, n = round(x/ln 2) (ties to even), |r| ≤ ½ ln 2, r = (x − n·LN2_HI) − n·LN2_LO
     * (Cody–Waite: the first product and difference exact); e^r by its Taylor series to r^13/13!
     * (the rest below 5e-18 relative) in Horner form; times 2^n built in the exponent bits.
     */
    public static double exp(double x) {
        // n = round(x·log2 e), as an integer in the low bits of t and exactly as a double in n
        double t = x * LOG2E + SHIFTER;
        double n = t - SHIFTER;
        double r = (x - n * LN2_HI) - n * LN2_LO;
        // e^r = 1 + r(1 + r(1/2! + r(1/3! + … + r/13!)))
        double p = 0x1.6124613a86d09p-33;
        p = 0x1.1eed8eff8d898p-29 + r * p;
        p = 0x1.ae64567f544e4p-26 + r * p;
        p = 0x1.27e4fb7789f5cp-22 + r * p;
        p = 0x1.71de3a556c734p-19 + r * p;
        p = 0x1.a01a01a01a01ap-16 + r * p;
        p = 0x1.a01a01a01a01ap-13 + r * p;
        p = 0x1.6c16c16c16c17p-10 + r * p;
        p = 0x1.1111111111111p-7 + r * p;
        p = 0x1.5555555555555p-5 + r * p;
        p = 0x1.5555555555555p-3 + r * p;
        p = 0.5 + r * p;
        p = 1.0 + r * p;
        p = 1.0 + r * p;
        // 2^n: n + 1023 in the exponent field (bits(t) = bits(SHIFTER) + n, whose low 12 bits are n's)
        double scale = Double.longBitsToDouble((Double.doubleToRawLongBits(t) + 1023L) << 52);
        return x < EXP_LOW ? 0.0 : p * scale;
    }

    /**
     * ln x. x = 2^k·m, m in [√½, √2) (k and m from the bits); f = m − 1 (exact), s = f/(2 + f),
     * so ln m = 2·atanh s = 2s + s·R with R = 2s²/3 + 2s⁴/5 + … + 2s²⁰/21 (|s| ≤ 0.1716: the rest
     * below 1e-18 relative), and since 2s = f − s·f, ln m = f − s·(f − R): the correction is small
     * against f, so its rounding errors hardly show. ln x = k·LN2_HI + (f − (s·(f − R) − k·LN2_LO)).
     */
    public static double log(double x) {
        long bits = Double.doubleToRawLongBits(x);
        // u >>> 52 = 1022 + k for x in [√½·2^k, √2·2^k)
        long u = bits - SQRT_HALF_FRACTION;
        long e = u >>> 52;
        // m = x·2^-k: the exponent field set to 1022 or 1023
        double m = Double.longBitsToDouble(bits - (e << 52) + (1022L << 52));
        // k exactly, from 2^52 + e (no integer-to-double conversion needed)
        double k = Double.longBitsToDouble(e | 0x4330000000000000L) - EXPONENT_BIAS;
        double f = m - 1.0;
        double s = f / (2.0 + f);
        double z = s * s;
        double q = 0x1.8618618618618p-4;
        q = 0x1.af286bca1af28p-4 + z * q;
        q = 0x1.e1e1e1e1e1e1ep-4 + z * q;
        q = 0x1.1111111111111p-3 + z * q;
        q = 0x1.3b13b13b13b14p-3 + z * q;
        q = 0x1.745d1745d1746p-3 + z * q;
        q = 0x1.c71c71c71c71cp-3 + z * q;
        q = 0x1.2492492492492p-2 + z * q;
        q = 0x1.999999999999ap-2 + z * q;
        q = 0x1.5555555555555p-1 + z * q;
        double rr = z * q;
        return k * LN2_HI + (f - (s * (f - rr) - k * LN2_LO));
    }
}
