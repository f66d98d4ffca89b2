package dev.mergeforge.backend.cuda;

/**
 * The dense float64 calls {@link CudaDenseSolver} makes, on device addresses of column-major n×n
 * matrices with leading dimension n, queued in order on the device's stream: cuSOLVER and cuBLAS
 * on a GPU ({@link CusolverLapack}); tests put a host stand-in here to check the rest of the
 * solve (layouts, the pivot rule, devInfo handling) without a GPU.
 */
interface DeviceLapack extends AutoCloseable {

    /** "cuSOLVER (libcusolver.so.12)" for the log. */
    String name();

    /** C = alpha·A·B + beta·C, no transposes, column-major m×k times k×n with leading dimensions m, k, m. */
    void gemm(int m, int n, int k, double alpha, long a, long b, double beta, long c);

    /** Doubles of workspace {@link #potrf} needs. */
    int potrfWorkspace(int n, long a);

    /** A = L·Lᵀ in place, lower triangle; the device int at {@code info} gets LAPACK's info (i &gt; 0: leading minor i not positive definite). */
    void potrf(int n, long a, long work, int lwork, long info);

    /** B (n×nrhs, leading dimension n) = A⁻¹·B with the lower factor from {@link #potrf}; LAPACK's info at {@code info}. */
    void potrs(int n, int nrhs, long a, long b, long info);

    /** out[i] = A[i][i] for i &lt; k, A with leading dimension ld (k doubles at {@code out}). */
    void diagonal(int k, int ld, long a, long out);

    @Override void close();
}
