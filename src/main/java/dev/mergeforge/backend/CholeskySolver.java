package dev.mergeforge.backend;

/**
 * One float64 Cholesky solve of A·X = B, A symmetric n×n and B n×m, both row-major — RegMean's
 * linear system. The CPU implementation is {@code linalg.CpuCholesky}; a backend with a device
 * offers its own through {@link Backend#cholesky()} (CUDA: cuSOLVER). What to do when A is not
 * positive definite (a least-squares solution on the CPU) is the caller's, not the solver's.
 *
 * <p>Acceptance rule, the same for every implementation: the factorisation succeeds when every
 * pivot satisfies L[j][j]² &gt; tol (so a pivot at or below tol, or NaN, fails).
 */
public interface CholeskySolver {

    /** Where the solve runs, for the log: "cpu (OpenBLAS)", "cuda:0 (cuSOLVER, libcusolver.so.12)". */
    String name();

    /**
     * Factors A = L·Lᵀ and overwrites b with A⁻¹·b; returns -1. When a pivot fails the rule above,
     * returns the index of the first failing one and leaves b as it was. {@code a} may be destroyed.
     */
    int trySolve(double[] a, int n, double tol, double[] b, int m);
}
