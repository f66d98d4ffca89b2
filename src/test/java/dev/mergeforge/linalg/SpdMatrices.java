package dev.mergeforge.linalg;

import java.util.Random;

/** Seeded random systems for the dense solver tests (CPU and GPU), row-major. */
public final class SpdMatrices {
    private SpdMatrices() {}

    /** A = Mᵀ·M / k + shift·I for random M [k, n]: symmetric, PSD, rank min(k, n) when shift is 0. */
    public static double[] gram(int n, int k, double shift, long seed) {
        double[] m = random(k * n, seed);
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < k; t++) s += m[t * n + i] * m[t * n + j];
            a[i * n + j] = s / k + (i == j ? shift : 0);
        }
        return a;
    }

    /** {@code len} standard normal values. */
    public static double[] random(int len, long seed) {
        Random r = new Random(seed);
        double[] b = new double[len];
        for (int i = 0; i < len; i++) b[i] = r.nextGaussian();
        return b;
    }
}
