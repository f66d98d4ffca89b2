package dev.mergeforge.linalg;

import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.Parallel;

import java.util.function.Supplier;

/**
 * Solves A·X = B for symmetric A (n×n) and many right-hand sides B (n×m), float64: Cholesky when A
 * is positive definite, else a basic least-squares solution by rank-revealing pivoted Cholesky
 * (which is exact when B lies in A's range, as it does for RegMean's normal equations).
 */
public final class SpdSolver {
    /** Pivots at or below this fraction of the largest diagonal count as zero. */
    public static final double RELATIVE_TOL = 1e-10;

    private SpdSolver() {}

    /**
     * @param positiveDefinite whether plain Cholesky succeeded
     * @param rank             n when positive definite, else the numerical rank found
     * @param badPivot         index of the first non-positive pivot of plain Cholesky, or -1
     */
    public record Outcome(boolean positiveDefinite, int rank, int badPivot) {}

    /**
     * Overwrites b with A⁻¹·b (or the basic least-squares solution), on the CPU. {@code matrix}
     * builds A afresh (the factorisation destroys it; it is asked a second time only on the
     * fallback path).
     */
    public static Outcome solve(Supplier<double[]> matrix, int n, double[] b, int m, Parallel par) {
        return solve(matrix, n, b, m, new CpuDenseSolver(par), par);
    }

    /**
     * As above with the Cholesky solve done by {@code solver} (a device's, say); the
     * least-squares fallback always runs on the CPU, so the result when A is not positive
     * definite does not depend on where the Cholesky attempt ran.
     */
    public static Outcome solve(Supplier<double[]> matrix, int n, double[] b, int m, DenseSolver solver, Parallel par) {
        double[] a = matrix.get();
        int bad = solver.trySolve(a, n, tolerance(a, n), b, m);
        if (bad < 0) return new Outcome(true, n, -1);
        a = null;
        double[] full = matrix.get();
        // the pivoted factor reads both triangles: make A symmetric from its lower triangle
        for (int i = 0; i < n; i++) for (int k = i + 1; k < n; k++) full[i * n + k] = full[k * n + i];
        PivotedCholesky.Factor f = PivotedCholesky.factor(full, n, tolerance(full, n), par);
        PivotedCholesky.solve(f, n, b, m, par);
        return new Outcome(false, f.rank(), bad);
    }

    /** OpenBLAS's factorisation with the Java kernel's acceptance rule: every pivot L[j][j]² above tol. */
    static int blasFactor(double[] a, int n, double tol) {
        int bad = Blas.factor(a, n);
        // the pivots dpotrf completed (all, or those before the one it stopped at) under our tolerance,
        // so the pivot reported is the one the Java Cholesky reports: the first that fails either test
        int done = bad >= 0 ? bad : n;
        for (int j = 0; j < done; j++) {
            double d = a[j * n + j];
            if (!(d * d > tol)) return j;
        }
        return bad;
    }

    /** RELATIVE_TOL · max diagonal (0 for an all-zero diagonal, so nothing passes). */
    public static double tolerance(double[] a, int n) {
        double max = 0;
        for (int i = 0; i < n; i++) max = Math.max(max, a[i * n + i]);
        return RELATIVE_TOL * max;
    }
}
