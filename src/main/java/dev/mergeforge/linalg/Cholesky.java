package dev.mergeforge.linalg;

import dev.mergeforge.backend.Parallel;

/**
 * Blocked, threaded Cholesky factorisation A = L·Lᵀ of a symmetric matrix in float64, and the
 * solve A·X = B with many right-hand sides by two triangular substitutions (never an inverse).
 * Right-looking: per panel of {@link #NB} columns, factor the diagonal block, solve the rows below
 * against it, then subtract the panel's outer product from the trailing lower triangle. Inner
 * loops are contiguous axpys (y += a·x), which the JIT vectorises. Every element is computed in a
 * fixed order, so results do not depend on the thread count.
 *
 * <p>Layout: row-major n×n; only the lower triangle of the input is read. On success the lower
 * triangle holds L and the strict upper triangle holds Lᵀ (so the backward substitution reads
 * rows), on failure the array is garbage.
 */
public final class Cholesky {
    /** Panel width of the factorisation. */
    static final int NB = 64;
    /** Column tile of the trailing update (doubles of a row kept in L1). */
    static final int JT = 512;
    /** Row block and right-hand-side columns per task of the substitutions. */
    static final int RB = 128, CB = 64;

    private Cholesky() {}

    /**
     * Factors {@code a} (n×n, row-major) in place. Returns -1 on success, else the index of the
     * first pivot that is not positive (≤ {@code tol}, or not finite).
     */
    public static int factor(double[] a, int n, double tol, Parallel par) {
        double[] panelT = new double[NB * n];
        for (int kb = 0; kb < n; kb += NB) {
            final int k0 = kb, k1 = Math.min(n, k0 + NB), w = k1 - k0;
            // L11 = chol(A11), unblocked
            for (int j = k0; j < k1; j++) {
                double d = a[j * n + j];
                for (int k = k0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
                if (!(d > tol)) return j;
                double ljj = Math.sqrt(d);
                a[j * n + j] = ljj;
                for (int i = j + 1; i < k1; i++) {
                    double s = a[i * n + j];
                    for (int k = k0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
                    a[i * n + j] = s / ljj;
                }
            }
            if (k1 == n) break;
            // L21 = A21·L11⁻ᵀ, row by row; panelT[k][i] = L21[i][k]
            par.forRange(n - k1, 32, (lo, hi) -> {
                for (int i = k1 + (int) lo; i < k1 + hi; i++) {
                    for (int j = k0; j < k1; j++) {
                        double s = a[i * n + j];
                        for (int k = k0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
                        double l = s / a[j * n + j];
                        a[i * n + j] = l;
                        panelT[(j - k0) * n + i] = l;
                    }
                }
            });
            // A22 -= L21·L21ᵀ on the lower triangle, as axpys over contiguous rows of panelT
            par.forRange(n - k1, 16, (lo, hi) -> {
                for (int i = k1 + (int) lo; i < k1 + hi; i++) {
                    int row = i * n;
                    for (int j0 = k1; j0 <= i; j0 += JT) {
                        int j1 = Math.min(i + 1, j0 + JT);
                        int k = 0;
                        // four panel columns per pass: one load and store of the row per 8 flops
                        for (; k + 4 <= w; k += 4) {
                            double l0 = a[row + k0 + k], l1 = a[row + k0 + k + 1], l2 = a[row + k0 + k + 2], l3 = a[row + k0 + k + 3];
                            int p0 = k * n, p1 = p0 + n, p2 = p1 + n, p3 = p2 + n;
                            for (int j = j0; j < j1; j++) {
                                a[row + j] -= l0 * panelT[p0 + j] + l1 * panelT[p1 + j] + l2 * panelT[p2 + j] + l3 * panelT[p3 + j];
                            }
                        }
                        for (; k < w; k++) {
                            double l = a[row + k0 + k];
                            int p = k * n;
                            for (int j = j0; j < j1; j++) a[row + j] -= l * panelT[p + j];
                        }
                    }
                }
            });
        }
        mirror(a, n, par);
        return -1;
    }

    /** upper[i][k] = L[k][i], so the backward substitution reads rows of Lᵀ. */
    static void mirror(double[] a, int n, Parallel par) {
        par.forRange(n, 64, (lo, hi) -> {
            for (int i = (int) lo; i < hi; i++) for (int k = i + 1; k < n; k++) a[i * n + k] = a[k * n + i];
        });
    }

    /**
     * Overwrites b (n×m, row-major) with A⁻¹·b given the output of a successful {@link #factor}:
     * L·Y = B forward, then Lᵀ·X = Y backward. Column blocks of b run in parallel.
     */
    public static void solve(double[] l, int n, double[] b, int m, Parallel par) {
        par.forRange(m, CB, (lo, hi) -> {
            int c0 = (int) lo, c1 = (int) hi;
            // Y[i] = (B[i] − Σ_{k<i} L[i][k]·Y[k]) / L[i][i]
            for (int i0 = 0; i0 < n; i0 += RB) {
                int i1 = Math.min(n, i0 + RB);
                for (int k0 = 0; k0 < i0; k0 += RB) {
                    int k1 = Math.min(i0, k0 + RB);
                    for (int i = i0; i < i1; i++) axpys(l, i * n, k0, k1, b, i, m, c0, c1, -1);
                }
                for (int i = i0; i < i1; i++) {
                    axpys(l, i * n, i0, i, b, i, m, c0, c1, -1);
                    scaleRow(b, i, m, c0, c1, 1.0 / l[i * n + i]);
                }
            }
            // X[i] = (Y[i] − Σ_{k>i} Lᵀ[i][k]·X[k]) / L[i][i]
            for (int i1 = n; i1 > 0; i1 -= RB) {
                int i0 = Math.max(0, i1 - RB);
                for (int k1 = n; k1 > i1; k1 -= RB) {
                    int k0 = Math.max(i1, k1 - RB);
                    for (int i = i1 - 1; i >= i0; i--) axpys(l, i * n, k0, k1, b, i, m, c0, c1, -1);
                }
                for (int i = i1 - 1; i >= i0; i--) {
                    axpys(l, i * n, i + 1, i1, b, i, m, c0, c1, -1);
                    scaleRow(b, i, m, c0, c1, 1.0 / l[i * n + i]);
                }
            }
        });
    }

    /** b[i][c0:c1] += sign · Σ_{k∈[k0,k1)} coef[row + k] · b[k][c0:c1]. */
    static void axpys(double[] coef, int row, int k0, int k1, double[] b, int i, int m, int c0, int c1, double sign) {
        axpysFrom(coef, row, k0, k1, b, b, i, m, c0, c1, sign);
    }

    /** y[i][c0:c1] += sign · Σ_{k∈[k0,k1)} coef[row + k] · x[k][c0:c1] (x and y n×m; may be the same array when i ∉ [k0, k1)). */
    static void axpysFrom(double[] coef, int row, int k0, int k1, double[] x, double[] b, int i, int m, int c0, int c1, double sign) {
        int bi = i * m;
        int k = k0;
        // four rows of b per pass: one load and store of b[i] per 8 flops
        for (; k + 4 <= k1; k += 4) {
            double f0 = sign * coef[row + k], f1 = sign * coef[row + k + 1], f2 = sign * coef[row + k + 2], f3 = sign * coef[row + k + 3];
            int b0 = k * m, b1 = b0 + m, b2 = b1 + m, b3 = b2 + m;
            for (int c = c0; c < c1; c++) b[bi + c] += f0 * x[b0 + c] + f1 * x[b1 + c] + f2 * x[b2 + c] + f3 * x[b3 + c];
        }
        for (; k < k1; k++) {
            double f = sign * coef[row + k];
            int bk = k * m;
            for (int c = c0; c < c1; c++) b[bi + c] += f * x[bk + c];
        }
    }

    private static void scaleRow(double[] b, int i, int m, int c0, int c1, double s) {
        int bi = i * m;
        for (int c = c0; c < c1; c++) b[bi + c] *= s;
    }
}
