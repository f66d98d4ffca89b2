package dev.mergeforge.backend.cuda;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * cuSOLVER's potrf/potrs and cuBLAS's dgemm and strided copy as plain host loops over "device" addresses
 * that are host memory ({@link HostDevice}), column-major with leading dimension n, following
 * LAPACK's reference dpotf2/dpotrs: info = j + 1 at the first pivot that is not positive or is NaN.
 * Like the libraries on the compute stream, each call runs after the work queued there before it
 * (it waits for {@code dev}, when given one, then computes at once).
 */
final class HostLapack implements DeviceLapack {
    private final Device dev;
    int gemmCalls, potrfCalls, potrsCalls;

    HostLapack() { this(null); }

    HostLapack(Device dev) { this.dev = dev; }

    private void queued() { if (dev != null) dev.sync(); }

    private static MemorySegment at(long address, long doubles) { return MemorySegment.ofAddress(address).reinterpret(8 * doubles); }

    @Override public String name() { return "host LAPACK stand-in"; }

    @Override
    public void gemm(int m, int n, int k, double alpha, long a, long b, double beta, long c) {
        gemmCalls++;
        queued();
        MemorySegment am = at(a, (long) m * k), bm = at(b, (long) k * n), cm = at(c, (long) m * n);
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
            // C[i][j] = α·Σ_p A[i][p]·B[p][j] + β·C[i][j]
            double s = 0;
            for (int p = 0; p < k; p++) s += get(am, m, i, p) * get(bm, k, p, j);
            set(cm, m, i, j, alpha * s + beta * get(cm, m, i, j));
        }
    }

    @Override public int potrfWorkspace(int n, long a) { return n; }

    @Override
    public void potrf(int n, long a, long work, int lwork, long info) {
        potrfCalls++;
        queued();
        MemorySegment m = at(a, (long) n * n);
        at(work, lwork).fill((byte) 0x5A);   // the workspace is scratch: garbage must not matter
        int rc = 0;
        for (int j = 0; j < n && rc == 0; j++) {
            // d = A[j][j] − Σ_{k<j} L[j][k]²
            double d = get(m, n, j, j);
            for (int k = 0; k < j; k++) d -= get(m, n, j, k) * get(m, n, j, k);
            if (!(d > 0)) { rc = j + 1; break; }
            double ljj = Math.sqrt(d);
            set(m, n, j, j, ljj);
            for (int i = j + 1; i < n; i++) {
                double s = get(m, n, i, j);
                for (int k = 0; k < j; k++) s -= get(m, n, i, k) * get(m, n, j, k);
                set(m, n, i, j, s / ljj);
            }
        }
        MemorySegment.ofAddress(info).reinterpret(4).set(JAVA_INT, 0, rc);
    }

    @Override
    public void potrs(int n, int nrhs, long a, long b, long info) {
        potrsCalls++;
        queued();
        MemorySegment l = at(a, (long) n * n), x = at(b, (long) n * nrhs);
        for (int c = 0; c < nrhs; c++) {
            // L·y = b, then Lᵀ·x = y, column c
            for (int i = 0; i < n; i++) {
                double s = get(x, n, i, c);
                for (int k = 0; k < i; k++) s -= get(l, n, i, k) * get(x, n, k, c);
                set(x, n, i, c, s / get(l, n, i, i));
            }
            for (int i = n - 1; i >= 0; i--) {
                double s = get(x, n, i, c);
                for (int k = i + 1; k < n; k++) s -= get(l, n, k, i) * get(x, n, k, c);
                set(x, n, i, c, s / get(l, n, i, i));
            }
        }
        MemorySegment.ofAddress(info).reinterpret(4).set(JAVA_INT, 0, 0);
    }

    @Override
    public void diagonal(int k, int ld, long a, long out) {
        queued();
        MemorySegment m = at(a, (long) ld * ld), o = at(out, k);
        for (int i = 0; i < k; i++) o.setAtIndex(JAVA_DOUBLE, i, m.getAtIndex(JAVA_DOUBLE, (long) i * (ld + 1)));
    }

    /** Column-major element (i, j) with leading dimension ld. */
    private static double get(MemorySegment m, int ld, int i, int j) { return m.getAtIndex(JAVA_DOUBLE, i + (long) j * ld); }

    private static void set(MemorySegment m, int ld, int i, int j, double v) { m.setAtIndex(JAVA_DOUBLE, i + (long) j * ld, v); }

    @Override public void close() { }
}
