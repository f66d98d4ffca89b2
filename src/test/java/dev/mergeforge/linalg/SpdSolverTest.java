package dev.mergeforge.linalg;

import dev.mergeforge.backend.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import static dev.mergeforge.linalg.SpdMatrices.gram;
import static dev.mergeforge.linalg.SpdMatrices.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The blocked Cholesky solve and its pivoted fallback against Gaussian elimination written here. */
class SpdSolverTest {
    static final Parallel ONE = new Parallel(1), TWO = new Parallel(2);

    @AfterAll static void shutdown() { ONE.shutdown(); TWO.shutdown(); }

    /** Gauss-Jordan elimination with partial pivoting: the reference solution of A·X = B. */
    static double[] gauss(double[] a0, int n, double[] b0, int m) {
        double[] a = a0.clone(), b = b0.clone();
        for (int c = 0; c < n; c++) {
            int p = c;
            for (int i = c + 1; i < n; i++) if (Math.abs(a[i * n + c]) > Math.abs(a[p * n + c])) p = i;
            for (int j = 0; j < n; j++) { double t = a[c * n + j]; a[c * n + j] = a[p * n + j]; a[p * n + j] = t; }
            for (int j = 0; j < m; j++) { double t = b[c * m + j]; b[c * m + j] = b[p * m + j]; b[p * m + j] = t; }
            for (int i = 0; i < n; i++) {
                if (i == c) continue;
                double f = a[i * n + c] / a[c * n + c];
                for (int j = 0; j < n; j++) a[i * n + j] -= f * a[c * n + j];
                for (int j = 0; j < m; j++) b[i * m + j] -= f * b[c * m + j];
            }
        }
        for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) b[i * m + j] /= a[i * n + i];
        return b;
    }

    static double[] times(double[] a, int n, double[] x, int m) {
        double[] y = new double[n * m];
        for (int i = 0; i < n; i++) for (int k = 0; k < n; k++) for (int j = 0; j < m; j++) y[i * m + j] += a[i * n + k] * x[k * m + j];
        return y;
    }

    @Test
    void choleskyMatchesGaussianEliminationOnOddSizes() {
        for (int[] nm : new int[][] {{1, 1}, {5, 3}, {63, 1}, {64, 65}, {203, 37}, {300, 130}}) {
            int n = nm[0], m = nm[1];
            double[] a = gram(n, n + 7, 0.01, n);
            double[] b = random(n * m, m);
            double[] expect = gauss(a, n, b, m);
            double[] x1 = b.clone(), x2 = b.clone();
            SpdSolver.Outcome o = SpdSolver.solve(a::clone, n, x1, m, ONE);
            assertTrue(o.positiveDefinite(), "n=" + n);
            SpdSolver.solve(a::clone, n, x2, m, TWO);
            assertArrayEquals(x1, x2, "thread count must not change a bit (n=" + n + ")");
            for (int i = 0; i < x1.length; i++) assertEquals(expect[i], x1[i], 1e-8 * (1 + Math.abs(expect[i])), "n=" + n + " at " + i);
        }
    }

    @Test
    void singularMatrixFallsBackToAnExactLeastSquaresSolution() {
        int n = 90, rank = 40, m = 11;
        double[] a = gram(n, rank, 0, 3);
        // b in A's range: b = A·z
        double[] b = times(a, n, random(n * m, 4), m);
        double[] x = b.clone();
        SpdSolver.Outcome o = SpdSolver.solve(a::clone, n, x, m, TWO);
        assertFalse(o.positiveDefinite());
        assertEquals(rank, o.rank());
        double[] back = times(a, n, x, m);
        for (int i = 0; i < b.length; i++) assertEquals(b[i], back[i], 1e-8 * (1 + Math.abs(b[i])), "A·x = b at " + i);
    }

    @Test
    void zeroMatrixGivesZeroSolution() {
        double[] x = {1, 2, 3, 4};
        SpdSolver.Outcome o = SpdSolver.solve(() -> new double[4], 2, x, 2, ONE);
        assertFalse(o.positiveDefinite());
        assertEquals(0, o.rank());
        assertArrayEquals(new double[4], x);
    }
}
