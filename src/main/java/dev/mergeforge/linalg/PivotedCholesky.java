package dev.mergeforge.linalg;

import dev.mergeforge.backend.Parallel;

/**
 * Rank-revealing Cholesky with symmetric pivoting (Higham, "Accuracy and Stability of Numerical
 * Algorithms", §10.3; LAPACK's dpstrf computes the same factor): P·A·Pᵀ = L·Lᵀ with L n×r, the
 * largest remaining diagonal chosen as pivot at every step, stopping when it falls to the
 * tolerance. For a consistent system A·x = b with A symmetric positive semi-definite this gives a
 * basic least-squares solution: (P·x)[0:r] = L₁₁⁻ᵀ·L₁₁⁻¹·(P·b)[0:r], the rest 0.
 *
 * <p>Unblocked (outer-product updates of the full trailing matrix, rows in parallel): it is the
 * fallback for singular systems, not the fast path.
 */
public final class PivotedCholesky {
    private PivotedCholesky() {}

    /** The factor: pivot order ({@code perm[j]} = original index of position j), rank, and L₁₁ in {@link Cholesky}'s layout. */
    public record Factor(int[] perm, int rank, double[] l11) {}

    /** Factors symmetric {@code a} in place (destroying it) (n×n, row-major; both triangles read). */
    public static Factor factor(double[] a, int n, double tol, Parallel par) {
        double[] s = a;
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        double[] col = new double[n];
        int r = 0;
        for (int j = 0; j < n; j++) {
            int p = j;
            for (int i = j + 1; i < n; i++) if (s[i * n + i] > s[p * n + p]) p = i;
            if (!(s[p * n + p] > tol)) break;
            swap(s, n, j, p);
            int t = perm[j]; perm[j] = perm[p]; perm[p] = t;
            // L[j][j] = sqrt(S[j][j]); L[i][j] = S[i][j] / L[j][j]
            double ljj = Math.sqrt(s[j * n + j]);
            s[j * n + j] = ljj;
            for (int i = j + 1; i < n; i++) {
                s[i * n + j] /= ljj;
                col[i] = s[i * n + j];
            }
            // S[i][k] -= L[i][j]·L[k][j] for i, k > j (both triangles, so later swaps stay symmetric)
            final int jj = j;
            par.forRange(n - j - 1, 32, (lo, hi) -> {
                for (int i = jj + 1 + (int) lo; i < jj + 1 + hi; i++) {
                    double li = col[i];
                    int row = i * n;
                    for (int k = jj + 1; k < n; k++) s[row + k] -= li * col[k];
                }
            });
            r++;
        }
        double[] l11 = new double[r * r];
        for (int i = 0; i < r; i++) System.arraycopy(s, i * n, l11, i * r, i + 1);
        Cholesky.mirror(l11, r, par);
        return new Factor(perm, r, l11);
    }

    /** Overwrites b (n×m) with the basic solution of A·x = b from the factor. */
    public static void solve(Factor f, int n, double[] b, int m, Parallel par) {
        int r = f.rank();
        double[] pb = new double[r * m];
        // (P·b)[0:r]
        for (int j = 0; j < r; j++) System.arraycopy(b, f.perm()[j] * m, pb, j * m, m);
        if (r > 0) Cholesky.solve(f.l11(), r, pb, m, par);
        java.util.Arrays.fill(b, 0.0);
        // x[perm[j]] = z[j] for j < r, 0 elsewhere
        for (int j = 0; j < r; j++) System.arraycopy(pb, j * m, b, f.perm()[j] * m, m);
    }

    /** Swaps rows and columns j and p of the full symmetric matrix. */
    private static void swap(double[] s, int n, int j, int p) {
        if (j == p) return;
        for (int k = 0; k < n; k++) {
            double t = s[j * n + k]; s[j * n + k] = s[p * n + k]; s[p * n + k] = t;
        }
        for (int k = 0; k < n; k++) {
            double t = s[k * n + j]; s[k * n + j] = s[k * n + p]; s[k * n + p] = t;
        }
    }
}
