package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.cuda.cublas.Cublas;
import dev.mergeforge.backend.cuda.cusolver.Cusolver;
import dev.mergeforge.errors.MergeforgeException;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * RegMean's float64 algebra on the GPU. Products C += s·M·X: M, X and C uploaded to pooled
 * device buffers, one cuBLAS dgemm, C downloaded (row-major C += s·M·X is column-major
 * Cᵀ += s·Xᵀ·Mᵀ, and the column-major views of row-major X, M, C are exactly Xᵀ, Mᵀ, Cᵀ, so
 * nothing is transposed). Solves: A and B uploaded, A = L·Lᵀ by cusolverDnDpotrf, the pivots checked on the host against the same rule as the CPU
 * (L[j][j]² &gt; tol, so a system the CPU calls not positive definite is called so here too, not
 * only when devInfo &gt; 0), then B = A⁻¹·B by cusolverDnDpotrs and copied back. Results agree with
 * the CPU solve to rounding (cuSOLVER orders its sums differently), not bit for bit.
 *
 * <p>Layouts: row-major symmetric A is its own column-major transpose, so it is uploaded as is;
 * row-major B (n×m) is transposed on the host to column-major n×m and back (O(n·m) next to the
 * O(n³ + n²·m) solve). Device memory for one call: 8·(n² + 2·n·m) bytes for a product,
 * 8·(n² + n·m + n) bytes plus cuSOLVER's workspace for a solve.
 */
final class CudaDenseSolver implements DenseSolver {
    private final Device dev;
    private final DeviceBufferPool pool;
    private final DeviceLapack lapack;
    private final Object lock;

    /** Works on {@code dev} with buffers from {@code pool}, holding {@code lock} (the backend) so its calls and the backend's ops never interleave. */
    CudaDenseSolver(Device dev, DeviceBufferPool pool, DeviceLapack lapack, Object lock) {
        this.dev = dev;
        this.pool = pool;
        this.lapack = lapack;
        this.lock = lock;
    }

    /** Empty when cuSOLVER and cuBLAS were both found, else a one-line reason naming the fix. Never throws. */
    static Optional<String> unavailableReason() {
        return Cusolver.unavailableReason().or(Cublas::unavailableReason);
    }

    @Override public String name() { return dev.describe() + " " + lapack.name(); }

    @Override
    public void addProduct(double s, double[] mat, int n, double[] x, double[] c, int m) {
        if (n == 0 || m == 0) return;
        synchronized (lock) {
            dev.makeCurrent();
            DeviceBuffer dm = pool.borrow(8L * n * n, "RegMean Gram " + n + "x" + n), dx = null, dc = null;
            try {
                dx = pool.borrow(8L * n * m, "RegMean weights " + n + "x" + m);
                dc = pool.borrow(8L * n * m, "RegMean right-hand sides " + n + "x" + m);
                dev.upload(MemorySegment.ofArray(mat), dm);
                dev.upload(MemorySegment.ofArray(x), dx);
                dev.upload(MemorySegment.ofArray(c), dc);
                // Cᵀ (m×n) += s·Xᵀ (m×n) · Mᵀ (n×n), column-major
                lapack.gemm(m, n, n, s, dx.address(), dm.address(), 1.0, dc.address());
                dev.download(dc, MemorySegment.ofArray(c));
            } finally {
                for (DeviceBuffer b : new DeviceBuffer[] {dm, dx, dc}) if (b != null) pool.release(b);
            }
        }
    }

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
                // devInfo = k > 0: pivot k-1 is not positive; the CPU would stop at an earlier one at or below tol
                int bad = firstBadPivot(da, n, diag, rc > 0 ? rc - 1 : n, tol);
                if (bad >= 0) return bad;
                if (rc > 0) return rc - 1;
                if (m > 0) solve(da, info, n, b, m);
                return -1;
            } finally {
                for (DeviceBuffer x : new DeviceBuffer[] {da, info, diag, work}) if (x != null) pool.release(x);
            }
        }
    }

    /** The first j &lt; k with L[j][j]² ≤ tol (or NaN), or -1: the CPU's acceptance rule on the first k pivots of cuSOLVER's factor. */
    private int firstBadPivot(DeviceBuffer da, int n, DeviceBuffer diag, int k, double tol) {
        if (k == 0) return -1;
        lapack.diagonal(k, n, da.address(), diag.address());
        double[] d = new double[k];
        dev.download(diag, MemorySegment.ofArray(d));
        for (int j = 0; j < k; j++) if (!(d[j] * d[j] > tol)) return j;
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
