package dev.mergeforge.backend;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Rows for Arcee Fusion's ops, shared by the Java, native and CUDA tests: base and other of
 * {@code rows} rows of {@code cols} elements, of several kinds.
 */
public final class FusionCases {
    private FusionCases() {}

    /** One case: what it is, the row length, θ₀ and θ₁ (whole rows). */
    public record Case(String name, int cols, float[] base, float[] other) {
        public int rows() { return base.length / cols; }
    }

    /**
     * Weight-like rows of odd and exact lengths (1, 7, 64, 4096, a row of 17 blocks and a tail that
     * is not a multiple of 64), equal rows (KL 0), nearly equal ones (KL around rounding, possibly
     * below 0), rows of huge spread (most exponentials underflow to 0), ±0 and subnormals; with
     * {@code nonFinite} also rows holding NaN and ±∞.
     */
    public static List<Case> cases(boolean nonFinite) {
        List<Case> cs = new ArrayList<>();
        cs.add(weights("one element a row", 1, 33, 0.02, 1));
        cs.add(weights("seven", 7, 9, 0.02, 2));
        cs.add(weights("64", 64, 5, 0.02, 3));
        cs.add(weights("a block", 4096, 3, 0.02, 4));
        cs.add(weights("17 blocks and a tail", 17 * 4096 + 6 * 64 + 5, 2, 0.02, 5));
        cs.add(weights("unit spread", 300, 4, 1, 6));
        cs.add(weights("huge spread", 1000, 3, 3e3, 7));
        Case w = weights("equal rows", 129, 4, 0.02, 8);
        cs.add(new Case(w.name(), w.cols(), w.base(), w.base().clone()));
        Case e = weights("nearly equal rows", 4099, 3, 0.02, 9);
        float[] near = e.base().clone();
        SplittableRandom r = new SplittableRandom(10);
        for (int i = 0; i < near.length; i++) if (r.nextInt(50) == 0) near[i] = Math.nextUp(near[i]);
        cs.add(new Case(e.name(), e.cols(), e.base(), near));
        cs.add(special("zeros and subnormals", 77, 6, 11, false));
        if (nonFinite) cs.add(special("NaN and infinities", 77, 6, 12, true));
        return cs;
    }

    private static Case weights(String name, int cols, int rows, double sd, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] b = new float[cols * rows], o = new float[cols * rows];
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) (r.nextGaussian() * sd);
            o[i] = (float) (b[i] + r.nextGaussian() * sd * 0.1);
        }
        return new Case(name, cols, b, o);
    }

    private static Case special(String name, int cols, int rows, long seed, boolean nonFinite) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] b = new float[cols * rows], o = new float[cols * rows];
        for (int i = 0; i < b.length; i++) {
            b[i] = value(r, nonFinite && i / cols % 2 == 1);
            o[i] = value(r, nonFinite && i / cols % 3 == 2);
        }
        return new Case(name, cols, b, o);
    }

    private static float value(SplittableRandom r, boolean nonFinite) {
        return switch (r.nextInt(nonFinite ? 9 : 6)) {
            case 0 -> 0f;
            case 1 -> -0f;
            case 2 -> Float.intBitsToFloat(r.nextInt(1, 0x007fffff)) * (r.nextBoolean() ? 1 : -1);
            case 6 -> Float.NaN;
            case 7 -> Float.POSITIVE_INFINITY;
            case 8 -> Float.NEGATIVE_INFINITY;
            default -> (float) (r.nextGaussian() * 0.5);
        };
    }

    /** KLs of every kind the later ops meet: positive, +0, −0, tiny negative, NaN (for rows). */
    public static float[] kls(int rows, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] k = new float[rows];
        for (int i = 0; i < rows; i++) {
            k[i] = switch (r.nextInt(6)) {
                case 0 -> 0f;
                case 1 -> -0f;
                case 2 -> -1e-9f;
                case 3 -> Float.NaN;
                default -> (float) r.nextDouble() * 1e-3f;
            };
        }
        return k;
    }
}
