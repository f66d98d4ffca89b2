package dev.mergeforge.linalg;

import dev.mergeforge.backend.Parallel;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The OpenBLAS path against the plain Java kernels (which the other linalg tests check against references). */
class BlasTest {
    static double[] spd(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] x = new double[n * (n + 3)], a = new double[n * n];
        for (int i = 0; i < x.length; i++) x[i] = r.nextGaussian();
        // A = XᵀX/rows + 0.1·I (rows = n + 3): symmetric positive definite
        int rows = n + 3;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < rows; t++) s += x[t * n + i] * x[t * n + j];
            a[i * n + j] = s / rows + (i == j ? 0.1 : 0);
        }
        return a;
    }

    @Test
    void factorSolveAndProductAgreeWithTheJavaKernels() {
        assumeTrue(Blas.available(), "OpenBLAS not installed: " + Blas.unavailableReason().orElse(""));
        Parallel par = new Parallel(2);
        try {
            for (int n : new int[] {1, 7, 130, 301}) {
                int m = 5 + n % 3;
                double[] a = spd(n, n), b = new double[n * m];
                SplittableRandom r = new SplittableRandom(7);
                for (int i = 0; i < b.length; i++) b[i] = r.nextGaussian();
                double[] la = a.clone(), lj = a.clone(), bb = b.clone(), bj = b.clone();
                assertEquals(-1, Blas.factor(la, n));
                assertEquals(-1, Cholesky.factor(lj, n, 0, par));
                for (int i = 0; i < n; i++) for (int k = 0; k <= i; k++) assertEquals(lj[i * n + k], la[i * n + k], 1e-10, "L[" + i + "][" + k + "]");
                Blas.solve(la, n, bb, m);
                Cholesky.solve(lj, n, bj, m, par);
                for (int i = 0; i < b.length; i++) assertEquals(bj[i], bb[i], 1e-8 * Math.max(1, Math.abs(bj[i])), "x[" + i + "]");
                // the solution satisfies A·x = b
                for (int i = 0; i < n; i++) for (int c = 0; c < m; c++) {
                    double s = 0;
                    for (int k = 0; k < n; k++) s += a[i * n + k] * bb[k * m + c];
                    assertEquals(b[i * m + c], s, 1e-8);
                }
                double[] c1 = new double[n * m], c2 = new double[n * m];
                Blas.addProduct(0.5, a, n, b, c1, m);
                for (int i = 0; i < n; i++) for (int c = 0; c < m; c++) {
                    double s = 0;
                    for (int k = 0; k < n; k++) s += a[i * n + k] * b[k * m + c];
                    c2[i * m + c] = 0.5 * s;
                }
                for (int i = 0; i < c1.length; i++) assertEquals(c2[i], c1[i], 1e-10 * Math.max(1, Math.abs(c2[i])));
            }
            // an indefinite matrix reports its failing pivot
            double[] bad = {1, 0, 0, -1};
            assertEquals(1, Blas.factor(bad, 2));
        } finally {
            par.shutdown();
        }
    }

    /**
     * A tiny pivot (3, below the relative tolerance) before an exactly zero one (9): dpotrf stops at
     * 9, the Java Cholesky at 3; both CPU paths must report 3, the pivot the RegMean warning names.
     */
    @Test
    void theReportedPivotIsTheFirstUnderTheToleranceOnBothCpuPaths() {
        assumeTrue(Blas.available(), "OpenBLAS not installed: " + Blas.unavailableReason().orElse(""));
        int n = 12;
        double[] a = SpdMatrices.gram(n, 30, 0, 3);
        for (int i = 0; i < n; i++) { a[3 * n + i] *= 1e-7; a[i * n + 3] *= 1e-7; }
        for (int i = 0; i < n; i++) { a[9 * n + i] = 0; a[i * n + 9] = 0; }
        double tol = SpdSolver.tolerance(a, n);
        assertEquals(9, Blas.factor(a.clone(), n), "dpotrf itself stops at the zero pivot");
        assertEquals(3, Cholesky.factor(a.clone(), n, tol, new dev.mergeforge.backend.Parallel(1)));
        assertEquals(3, SpdSolver.blasFactor(a.clone(), n, tol));
    }
}
