package dev.mergeforge.linalg;

import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.Parallel;

/** RegMean's float64 algebra on the CPU: OpenBLAS's dgemm/dpotrf/dtrsm when present ({@link Blas}), else the blocked Java kernels of {@link Gemm} and {@link Cholesky}. */
public final class CpuDenseSolver implements DenseSolver {
    private final Parallel par;

    public CpuDenseSolver(Parallel par) { this.par = par; }

    @Override public String name() { return Blas.available() ? "cpu (OpenBLAS)" : "cpu (Java kernels)"; }

    @Override
    public void addProduct(double s, double[] mat, int n, double[] x, double[] c, int m) { Gemm.addProduct(s, mat, n, x, c, m, par); }

    @Override
    public int trySolve(double[] a, int n, double tol, double[] b, int m) {
        int bad = Blas.available() ? SpdSolver.blasFactor(a, n, tol) : Cholesky.factor(a, n, tol, par);
        if (bad >= 0) return bad;
        if (Blas.available()) Blas.solve(a, n, b, m);
        else Cholesky.solve(a, n, b, m, par);
        return -1;
    }
}
