package dev.mergeforge.linalg;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Truncated SVD of an m × n matrix read row by row, for LoRA extraction (docs/io.md, "Extracting a
 * LoRA"). Randomized range finder (Halko, Martinsson, Tropp 2011, arXiv 0909.4061, algorithms 4.4
 * and 5.1): Y = D·Ω with k = r + 10 Gaussian columns, two power iterations (each pass
 * re-orthonormalised), Q = orth(Y), then the exact SVD of the small k × n matrix Qᵀ·D by one-sided
 * Jacobi. When k reaches min(m, n) the range is the whole column space and the result is the exact
 * truncated SVD. Memory is O((m + n)·k) doubles: D itself is never held, each pass streams its rows.
 */
public final class TruncatedSvd {
    /** The matrix, one row at a time. */
    public interface Rows {
        int rows();

        int cols();

        /** Writes row i into dst (length cols). */
        void row(int i, double[] dst);
    }

    /**
     * D ≈ U·diag(s)·Vt with singular values in descending order.
     *
     * @param u  m × k, row-major
     * @param vt k × n, row-major
     */
    public record Result(int m, int n, int k, double[] u, double[] s, double[] vt) {}

    static final int OVERSAMPLE = 10, POWER_ITERATIONS = 2;

    private TruncatedSvd() {}

    /** The leading min(rank + 10, m, n) singular triplets of d (Ω drawn from {@code seed}). */
    public static Result compute(Rows d, int rank, long seed) {
        int m = d.rows(), n = d.cols();
        int k = Math.min(rank + OVERSAMPLE, Math.min(m, n));
        boolean exact = k == Math.min(m, n);
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] omega = new double[n * k];
        for (int i = 0; i < omega.length; i++) omega[i] = gaussian(rnd);
        double[] y = times(d, omega, k);                 // Y = D·Ω   [m × k]
        for (int it = 0; !exact && it < POWER_ITERATIONS; it++) {
            orthonormalize(y, m, k, rnd);
            double[] z = transposeTimes(d, y, k);        // Z = Dᵀ·Q  [n × k]
            orthonormalize(z, n, k, rnd);
            y = times(d, z, k);                          // Y = D·Z
        }
        orthonormalize(y, m, k, rnd);                    // Q
        double[] bt = transposeTimes(d, y, k);           // Bᵀ = Dᵀ·Q [n × k], B = Qᵀ·D
        // one-sided Jacobi on Bᵀ: Bᵀ·W = V·diag(s) with W orthogonal, so B = W·diag(s)·Vᵀ
        double[] w = new double[k * k];
        for (int i = 0; i < k; i++) w[i * k + i] = 1;
        jacobi(bt, n, k, w);
        double[] s = new double[k];
        for (int j = 0; j < k; j++) {
            double ss = 0;
            for (int i = 0; i < n; i++) ss += bt[i * k + j] * bt[i * k + j];
            s[j] = Math.sqrt(ss);
        }
        Integer[] order = new Integer[k];
        for (int j = 0; j < k; j++) order[j] = j;
        Arrays.sort(order, (a, b) -> Double.compare(s[b], s[a]));
        double[] u = new double[m * k], vt = new double[k * n], sOut = new double[k];
        for (int jj = 0; jj < k; jj++) {
            int j = order[jj];
            sOut[jj] = s[j];
            // v_j = column j of Bᵀ / s_j
            for (int i = 0; i < n; i++) vt[jj * n + i] = s[j] > 0 ? bt[i * k + j] / s[j] : 0;
            // u_j = Q·w_j
            for (int r = 0; r < m; r++) {
                double acc = 0;
                for (int c = 0; c < k; c++) acc += y[r * k + c] * w[c * k + j];
                u[r * k + jj] = acc;
            }
        }
        return new Result(m, n, k, u, sOut, vt);
    }

    private static double gaussian(SplittableRandom r) {
        // Box–Muller
        double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    /** D·X for X [n × k]: one pass over D's rows. */
    private static double[] times(Rows d, double[] x, int k) {
        int m = d.rows(), n = d.cols();
        double[] row = new double[n], out = new double[m * k];
        for (int i = 0; i < m; i++) {
            d.row(i, row);
            for (int j = 0; j < n; j++) {
                double v = row[j];
                if (v == 0) continue;
                for (int c = 0; c < k; c++) out[i * k + c] += v * x[j * k + c];
            }
        }
        return out;
    }

    /** Dᵀ·Q for Q [m × k]: one pass over D's rows, Σᵢ D[i,:]ᵀ ⊗ Q[i,:]. */
    private static double[] transposeTimes(Rows d, double[] q, int k) {
        int m = d.rows(), n = d.cols();
        double[] row = new double[n], out = new double[n * k];
        for (int i = 0; i < m; i++) {
            d.row(i, row);
            for (int j = 0; j < n; j++) {
                double v = row[j];
                if (v == 0) continue;
                for (int c = 0; c < k; c++) out[j * k + c] += v * q[i * k + c];
            }
        }
        return out;
    }

    /** Orthonormal columns of a [rows × k] (modified Gram–Schmidt, twice); a column lost to rank deficiency is replaced by a random one. */
    static void orthonormalize(double[] a, int rows, int k, SplittableRandom rnd) {
        for (int c = 0; c < k; c++) {
            double before = norm(a, rows, k, c);
            for (int pass = 0; pass < 2; pass++) {
                for (int p = 0; p < c; p++) {
                    double dot = 0;
                    for (int r = 0; r < rows; r++) dot += a[r * k + p] * a[r * k + c];
                    for (int r = 0; r < rows; r++) a[r * k + c] -= dot * a[r * k + p];
                }
            }
            double nrm = norm(a, rows, k, c);
            if (nrm <= 1e-12 * Math.max(before, Double.MIN_NORMAL) || nrm == 0) {
                // D has rank below c: any unit vector orthogonal to the others keeps Q orthonormal
                for (int r = 0; r < rows; r++) a[r * k + c] = gaussian(rnd);
                c--;
                continue;
            }
            for (int r = 0; r < rows; r++) a[r * k + c] /= nrm;
        }
    }

    private static double norm(double[] a, int rows, int k, int c) {
        double s = 0;
        for (int r = 0; r < rows; r++) s += a[r * k + c] * a[r * k + c];
        return Math.sqrt(s);
    }

    /** Hestenes one-sided Jacobi: rotates column pairs of a [rows × k] until orthogonal, accumulating the rotations in w [k × k]. */
    private static void jacobi(double[] a, int rows, int k, double[] w) {
        for (int sweep = 0; sweep < 60; sweep++) {
            boolean rotated = false;
            for (int p = 0; p < k - 1; p++) {
                for (int q = p + 1; q < k; q++) {
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int r = 0; r < rows; r++) {
                        double x = a[r * k + p], y = a[r * k + q];
                        alpha += x * x;
                        beta += y * y;
                        gamma += x * y;
                    }
                    if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma == 0) continue;
                    rotated = true;
                    // the rotation that zeroes the pair's inner product
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.signum(zeta == 0 ? 1 : zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                    double c = 1 / Math.sqrt(1 + t * t), s = c * t;
                    for (int r = 0; r < rows; r++) {
                        double x = a[r * k + p], y = a[r * k + q];
                        a[r * k + p] = c * x - s * y;
                        a[r * k + q] = s * x + c * y;
                    }
                    for (int r = 0; r < k; r++) {
                        double x = w[r * k + p], y = w[r * k + q];
                        w[r * k + p] = c * x - s * y;
                        w[r * k + q] = s * x + c * y;
                    }
                }
            }
            if (!rotated) return;
        }
    }
}
