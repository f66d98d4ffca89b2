package dev.mergeforge.linalg;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** TruncatedSvd against matrices built from known singular vectors and values. */
class TruncatedSvdTest {
    /** Orthonormal columns [rows × p] by Gram–Schmidt of Gaussian vectors. */
    static double[][] orthonormal(int rows, int p, Random r) {
        double[][] c = new double[p][rows];
        for (int j = 0; j < p; j++) {
            for (int i = 0; i < rows; i++) c[j][i] = r.nextGaussian();
            for (int pass = 0; pass < 2; pass++) {
                for (int q = 0; q < j; q++) {
                    double d = 0;
                    for (int i = 0; i < rows; i++) d += c[q][i] * c[j][i];
                    for (int i = 0; i < rows; i++) c[j][i] -= d * c[q][i];
                }
            }
            double n = 0;
            for (int i = 0; i < rows; i++) n += c[j][i] * c[j][i];
            for (int i = 0; i < rows; i++) c[j][i] /= Math.sqrt(n);
        }
        return c;
    }

    /** D = Σ σ_j u_j v_jᵀ, read row by row. */
    static TruncatedSvd.Rows matrix(int m, int n, double[] sigma, long seed) {
        Random r = new Random(seed);
        double[][] u = orthonormal(m, sigma.length, r), v = orthonormal(n, sigma.length, r);
        double[] d = new double[m * n];
        for (int j = 0; j < sigma.length; j++) for (int a = 0; a < m; a++) for (int b = 0; b < n; b++) d[a * n + b] += sigma[j] * u[j][a] * v[j][b];
        return new TruncatedSvd.Rows() {
            @Override public int rows() { return m; }

            @Override public int cols() { return n; }

            @Override public void row(int i, double[] dst) { System.arraycopy(d, i * n, dst, 0, n); }
        };
    }

    /** ‖D − U_r·S_r·V_rᵀ‖_F. */
    static double residual(TruncatedSvd.Rows d, TruncatedSvd.Result s, int r) {
        double sum = 0;
        double[] row = new double[d.cols()];
        for (int i = 0; i < d.rows(); i++) {
            d.row(i, row);
            for (int j = 0; j < d.cols(); j++) {
                double x = row[j];
                for (int k = 0; k < r; k++) x -= s.u()[i * s.k() + k] * s.s()[k] * s.vt()[k * d.cols() + j];
                sum += x * x;
            }
        }
        return Math.sqrt(sum);
    }

    @Test
    void exactWhenTheRangeCoversEveryColumn() {
        double[] sigma = {9, 7, 5, 3, 2, 1, 0.5, 0.25};
        TruncatedSvd.Rows d = matrix(12, 9, sigma, 1);
        TruncatedSvd.Result s = TruncatedSvd.compute(d, 3, 7);   // k = min(13, 9) = 9: exact
        for (int j = 0; j < sigma.length; j++) assertEquals(sigma[j], s.s()[j], 1e-12, "sigma " + j);
        assertEquals(0, s.s()[8], 1e-12);
        // Eckart–Young: the rank-3 residual is the norm of the dropped singular values
        assertEquals(Math.sqrt(9 + 4 + 1 + 0.25 + 0.0625), residual(d, s, 3), 1e-12);
    }

    @Test
    void randomizedRecoversALowRankMatrixExactlyAndADecayingOneNearlyOptimally() {
        TruncatedSvd.Rows low = matrix(300, 200, new double[] {4, 3, 2}, 2);
        TruncatedSvd.Result s = TruncatedSvd.compute(low, 4, 3);  // k = 14 < 200: randomized
        assertEquals(14, s.k());
        assertEquals(4, s.s()[0], 1e-12);
        assertEquals(2, s.s()[2], 1e-12);
        assertTrue(residual(low, s, 3) < 1e-11, "rank 3 recovered exactly");
        double[] sigma = new double[60];
        for (int j = 0; j < sigma.length; j++) sigma[j] = Math.pow(0.85, j);
        TruncatedSvd.Rows decaying = matrix(300, 200, sigma, 4);
        TruncatedSvd.Result t = TruncatedSvd.compute(decaying, 5, 5);
        double optimal = 0;
        for (int j = 5; j < sigma.length; j++) optimal += sigma[j] * sigma[j];
        optimal = Math.sqrt(optimal);
        double got = residual(decaying, t, 5);
        assertTrue(got >= optimal * (1 - 1e-9) && got <= optimal * 1.02, "rank-5 residual " + got + " vs optimal " + optimal);
        for (int j = 0; j < 5; j++) assertEquals(sigma[j], t.s()[j], 1e-3 * sigma[j], "sigma " + j);
    }
}
