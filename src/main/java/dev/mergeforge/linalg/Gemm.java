package dev.mergeforge.linalg;

import dev.mergeforge.backend.Parallel;

/** C += s·M·X for row-major float64 M (n×n), X and C (n×m): OpenBLAS when present ({@link Blas}), else blocked axpys, column blocks in parallel, fixed order. */
public final class Gemm {
    private Gemm() {}

    public static void addProduct(double s, double[] mat, int n, double[] x, double[] c, int m, Parallel par) {
        if (Blas.available()) {
            Blas.addProduct(s, mat, n, x, c, m);
            return;
        }
        par.forRange(m, Cholesky.CB, (lo, hi) -> {
            int c0 = (int) lo, c1 = (int) hi;
            for (int i0 = 0; i0 < n; i0 += Cholesky.RB) {
                int i1 = Math.min(n, i0 + Cholesky.RB);
                for (int k0 = 0; k0 < n; k0 += Cholesky.RB) {
                    int k1 = Math.min(n, k0 + Cholesky.RB);
                    for (int i = i0; i < i1; i++) {
                        // C[i] += s·Σ_k M[i][k]·X[k]
                        Cholesky.axpysFrom(mat, i * n, k0, k1, x, c, i, m, c0, c1, s);
                    }
                }
            }
        });
    }
}
