package dev.mergeforge.backend;

/**
 * The float64 dense linear algebra of RegMean's systems, row-major throughout: the products
 * that form the right-hand sides and the Cholesky solve of A·X = B (A symmetric n×n, B n×m).
 * The CPU implementation is {@code linalg.CpuDenseSolver}; a backend with a device offers its
 * own through {@link Backend#denseSolver()} (CUDA: cuBLAS and cuSOLVER). What to do when A is not
 * positive definite (a least-squares solution on the CPU) is the caller's, not the solver's.
 *
 * <p>Acceptance rule, the same for every implementation: the factorisation succeeds when every
 * pivot satisfies L[j][j]² &gt; tol (so a pivot at or below tol, or NaN, fails). Results of
 * different implementations agree to float64 rounding, not bit for bit.
 */
public interface DenseSolver {

    /** Where it runs, for the log: "cpu (OpenBLAS)", "cuda:0 (...) cuSOLVER (libcusolver.so.12, libcublas.so.13)". */
    String name();

    /** C (n×m) += s·M·X with M n×n and X n×m. */
    void addProduct(double s, double[] mat, int n, double[] x, double[] c, int m);

    /**
     * Factors A = L·Lᵀ and overwrites b with A⁻¹·b; returns -1. When a pivot fails the rule above,
     * returns the index of the first failing one and leaves b as it was. {@code a} may be destroyed.
     */
    int trySolve(double[] a, int n, double tol, double[] b, int m);
}
