package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.cuda.cublas.Cublas;
import dev.mergeforge.backend.cuda.cusolver.Cusolver;

/** {@link DeviceLapack} on a GPU: cuSOLVER's potrf/potrs, cuBLAS's dgemm and strided copy, both handles on the device's stream. */
final class CusolverLapack implements DeviceLapack {
    private final Cusolver solver;
    private final Cublas blas;

    /** Handles on the current context, queued on {@code stream}; throws with the reason when either library is missing. */
    CusolverLapack(long stream) {
        Cusolver s = Cusolver.create();
        Cublas b = null;
        try {
            s.setStream(stream);
            b = Cublas.create();
            b.setStream(stream);
        } catch (RuntimeException e) {
            if (b != null) b.close();
            s.close();
            throw e;
        }
        this.solver = s;
        this.blas = b;
    }

    @Override
    public String name() {
        return "cuSOLVER (" + Cusolver.libraryName().orElse("?") + ", " + Cublas.libraryName().orElse("?") + ")";
    }

    @Override
    public void gemm(int m, int n, int k, double alpha, long a, long b, double beta, long c) {
        blas.dgemm(false, false, m, n, k, alpha, a, m, b, k, beta, c, m);
    }

    @Override public int potrfWorkspace(int n, long a) { return solver.dpotrfBufferSize(n, a, n); }

    @Override public void potrf(int n, long a, long work, int lwork, long info) { solver.dpotrf(n, a, n, work, lwork, info); }

    @Override public void potrs(int n, int nrhs, long a, long b, long info) { solver.dpotrs(n, nrhs, a, n, b, n, info); }

    // column-major: A[i][i] sits at i·(ld+1)
    @Override public void diagonal(int k, int ld, long a, long out) { blas.dcopy(k, a, ld + 1, out, 1); }

    @Override
    public void close() {
        try {
            blas.close();
        } finally {
            solver.close();
        }
    }
}
