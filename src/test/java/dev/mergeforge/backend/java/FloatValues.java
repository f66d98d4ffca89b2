package dev.mergeforge.backend.java;

import java.util.SplittableRandom;

/** Test data for the fused elementwise ops: Gaussians over many scales with the float edge cases mixed in. */
final class FloatValues {
    private FloatValues() {}

    /** n Gaussians times 2^-30 … 2^19, one in fifty each an exact +0, −0, +∞ or a subnormal. */
    static float[] of(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (r.nextInt(50)) {
                case 0 -> 0f;
                case 1 -> -0f;
                case 2 -> Float.POSITIVE_INFINITY;
                case 3 -> 1e-40f;
                default -> (float) (r.nextGaussian() * Math.pow(2, r.nextInt(-30, 20)));
            };
        }
        return v;
    }
}
