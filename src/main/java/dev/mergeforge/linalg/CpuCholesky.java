package dev.mergeforge.linalg;

import dev.mergeforge.backend.CholeskySolver;
import dev.mergeforge.backend.Parallel;

/** The CPU Cholesky solve: OpenBLAS's dpotrf/dtrsm when present ({@link Blas}), else the blocked Java kernels of {@link Cholesky}. */
public final class CpuCholesky implements CholeskySolver {
    private final Parallel par;

    public CpuCholesky(Parallel par) { this.par = par; }

    @Override public String name() { return Blas.available() ? "cpu (OpenBLAS)" : "cpu (Java kernels)"; }

    @Override
    public int trySolve(double[] a, int n, double tol, double[] b, int m) {
        int bad = Blas.available() ? SpdSolver.blasFactor(a, n, tol) : Cholesky.factor(a, n, tol, par);
        if (bad >= 0) return bad;
        if (Blas.available()) Blas.solve(a, n, b, m);
        else Cholesky.solve(a, n, b, m, par);
        return -1;
    }
}
