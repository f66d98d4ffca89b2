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

    /**
     * A factored once on the CPU, then solved against any number of right-hand-side blocks: for
     * RegMean's row chunks, each block is columns of the B that {@link #solve} would take whole.
     * Every column of X depends only on A and its own column of B (the kernels work column by column
     * in a fixed order), so solving B block by block gives the bits of solving it whole with the
     * CPU's solver (checked by the tests, for OpenBLAS too). Holds one n×n float64 factor.
     */
    public static final class Factored {
        private final int n;
        private final Parallel par;
        private final Outcome outcome;
        private final double[] l;
        private final PivotedCholesky.Factor pivoted;

        private Factored(int n, Parallel par, Outcome outcome, double[] l, PivotedCholesky.Factor pivoted) {
            this.n = n;
            this.par = par;
            this.outcome = outcome;
            this.l = l;
            this.pivoted = pivoted;
        }

        /** Whether plain Cholesky succeeded, the rank, the failing pivot: as {@link #solve} reports them. */
        public Outcome outcome() { return outcome; }

        /** Overwrites b (n×m, row-major) with A⁻¹·b, or the basic least-squares solution when A is not positive definite. */
        public void solve(double[] b, int m) {
            if (pivoted != null) PivotedCholesky.solve(pivoted, n, b, m, par);
            else if (Blas.available()) Blas.solve(l, n, b, m);
            else Cholesky.solve(l, n, b, m, par);
        }
    }

    /**
     * Factors A ({@code matrix} builds it, asked again only on the fallback path, as {@link #solve})
     * with the CPU's kernels: OpenBLAS when present, else the Java Cholesky; the pivoted Cholesky
     * when A is not positive definite.
     */
    public static Factored factor(Supplier<double[]> matrix, int n, Parallel par) {
        double[] a = matrix.get();
        double tol = tolerance(a, n);
        int bad = Blas.available() ? blasFactor(a, n, tol) : Cholesky.factor(a, n, tol, par);
        if (bad < 0) return new Factored(n, par, new Outcome(true, n, -1), a, null);
        a = null;
        double[] full = matrix.get();
        // the pivoted factor reads both triangles: make A symmetric from its lower triangle
        for (int i = 0; i < n; i++) for (int k = i + 1; k < n; k++) full[i * n + k] = full[k * n + i];
        PivotedCholesky.Factor f = PivotedCholesky.factor(full, n, tolerance(full, n), par);
        return new Factored(n, par, new Outcome(false, f.rank(), bad), null, f);
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
