package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.CholeskySolver;
import dev.mergeforge.backend.cuda.cublas.Cublas;
import dev.mergeforge.backend.cuda.cusolver.Cusolver;
import dev.mergeforge.errors.MergeforgeException;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * RegMean's float64 Cholesky solve on the GPU: A and B are copied to pooled device buffers,
 * A = L·Lᵀ by cusolverDnDpotrf, the pivots checked on the host against the same rule as the CPU
 * (L[j][j]² &gt; tol, so a system the CPU calls not positive definite is called so here too, not
 * only when devInfo &gt; 0), then B = A⁻¹·B by cusolverDnDpotrs and copied back. Results agree with
 * the CPU solve to rounding (cuSOLVER orders its sums differently), not bit for bit.
 *
 * <p>Layouts: row-major symmetric A is its own column-major transpose, so it is uploaded as is;
 * row-major B (n×m) is transposed on the host to column-major n×m and back (O(n·m) next to the
 * O(n³ + n²·m) solve). Device memory for one call: 8·(n² + n·m + n) bytes plus cuSOLVER's workspace.
 */
final class CudaCholesky implements CholeskySolver {
    private final Device dev;
    private final DeviceBufferPool pool;
    private final DeviceLapack lapack;
    private final Object lock;

    /** Solves on {@code dev} with buffers from {@code pool}, holding {@code lock} (the backend) so solves and ops never interleave. */
    CudaCholesky(Device dev, DeviceBufferPool pool, DeviceLapack lapack, Object lock) {
        this.dev = dev;
        this.pool = pool;
        this.lapack = lapack;
        this.lock = lock;
    }

    /** Empty when cuSOLVER and cuBLAS were both found, else a one-line reason naming the fix. Never throws. */
    static Optional<String> unavailableReason() {
        return Cusolver.unavailableReason().or(() -> Cublas.unavailableReason());
    }

    @Override public String name() { return dev.describe() + " " + lapack.name(); }

    @Override
    public int trySolve(double[] a, int n, double tol, double[] b, int m) {
        if (n == 0) return -1;
        synchronized (lock) {
            dev.makeCurrent();
            DeviceBuffer da = pool.borrow(8L * n * n, "RegMean system " + n + "x" + n);
            DeviceBuffer info = null, diag = null, work = null;
            try {
                info = pool.borrow(4, "devInfo");
                diag = pool.borrow(8L * n, "pivots");
                dev.upload(MemorySegment.ofArray(a), da);
                int lwork = Math.max(1, lapack.potrfWorkspace(n, da.address()));
                work = pool.borrow(8L * lwork, "cuSOLVER workspace");
                // A = L·Lᵀ
                lapack.potrf(n, da.address(), work.address(), lwork, info.address());
                int rc = readInfo(info, "cusolverDnDpotrf");
                if (rc > 0) return rc - 1;
                int bad = firstBadPivot(da, diag, n, tol);
                if (bad >= 0) return bad;
                if (m > 0) solve(da, info, n, b, m);
                return -1;
            } finally {
                for (DeviceBuffer x : new DeviceBuffer[] {da, info, diag, work}) if (x != null) pool.release(x);
            }
        }
    }

    /** The first j with L[j][j]² ≤ tol (or NaN), or -1: the CPU's acceptance rule on cuSOLVER's factor. */
    private int firstBadPivot(DeviceBuffer da, DeviceBuffer diag, int n, double tol) {
        lapack.diagonal(n, da.address(), diag.address());
        double[] d = new double[n];
        dev.download(diag, MemorySegment.ofArray(d));
        for (int j = 0; j < n; j++) if (!(d[j] * d[j] > tol)) return j;
        return -1;
    }

    /** B = A⁻¹·B with the factor in da; b row-major n×m in and out. */
    private void solve(DeviceBuffer da, DeviceBuffer info, int n, double[] b, int m) {
        double[] cm = new double[b.length];
        // column-major B: B[i][j] at i + j·n
        for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) cm[i + j * n] = b[i * m + j];
        DeviceBuffer db = pool.borrow(8L * n * m, "RegMean right-hand sides " + n + "x" + m);
        try {
            dev.upload(MemorySegment.ofArray(cm), db);
            // X = L⁻ᵀ·L⁻¹·B
            lapack.potrs(n, m, da.address(), db.address(), info.address());
            int rc = readInfo(info, "cusolverDnDpotrs");
            if (rc != 0) throw new MergeforgeException("cusolverDnDpotrs reported devInfo " + rc + " (n=" + n + ", nrhs=" + m + ")");
            dev.download(db, MemorySegment.ofArray(cm));
        } finally {
            pool.release(db);
        }
        for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) b[i * m + j] = cm[i + j * n];
    }

    /** devInfo after the queued work (the download waits for it); a negative value is a bad argument, i.e. a bug here. */
    private int readInfo(DeviceBuffer info, String call) {
        int[] v = new int[1];
        dev.download(info, MemorySegment.ofArray(v));
        if (v[0] < 0) throw new MergeforgeException(call + ": argument " + (-v[0]) + " is invalid (devInfo " + v[0] + ")");
        return v[0];
    }
}
