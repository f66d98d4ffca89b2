package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.cuda.cublas.Cublas;
import jcuda.driver.JCudaDriver;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** cuBLAS sgemm through the FFM binding on the CUDA backend's buffers, against a double reference. Needs a GPU. */
@Tag("gpu")
class CublasGpuTest {

    @Test
    void sgemmMatchesDoubleReference() {
        Assumptions.assumeTrue(CudaBackend.unavailableReason().isEmpty(), () -> "CUDA unavailable: " + CudaBackend.unavailableReason().orElse(""));
        Assumptions.assumeTrue(Cublas.unavailableReason().isEmpty(), () -> "cuBLAS unavailable: " + Cublas.unavailableReason().orElse(""));
        int m = 33, n = 17, k = 65;
        SplittableRandom r = new SplittableRandom(3);
        float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
        try (CudaBackend cuda = new CudaBackend(0)) {
            DeviceOps ops = cuda.deviceOps();
            ops.dev.makeCurrent();
            DeviceBuffer da = ops.pool.borrow(4L * a.length, "A"), db = ops.pool.borrow(4L * b.length, "B"), dc = ops.pool.borrow(4L * c.length, "C");
            try (Cublas blas = Cublas.create()) {
                ops.dev.upload(MemorySegment.ofArray(a), da);
                ops.dev.upload(MemorySegment.ofArray(b), db);
                ops.dev.sync();
                // column-major: A is m x k (lda = m), B is k x n (ldb = k), C = A B is m x n (ldc = m)
                blas.sgemm(false, false, m, n, k, 1f, da.address(), m, db.address(), k, 0f, dc.address(), m);
                CudaErrors.check(JCudaDriver.cuCtxSynchronize(), "sgemm");
                ops.dev.download(dc, MemorySegment.ofArray(c));
            } finally {
                ops.pool.release(da);
                ops.pool.release(db);
                ops.pool.release(dc);
            }
        }
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double want = 0, mag = 0;
                for (int p = 0; p < k; p++) {
                    want += (double) a[i + p * m] * b[p + j * k];
                    mag += Math.abs((double) a[i + p * m] * b[p + j * k]);
                }
                // float32 accumulation in any order (pedantic math: no TF32)
                assertEquals(want, c[i + j * m], 1e-6 * k * mag + 1e-6, "C[" + i + "," + j + "]");
            }
        }
    }
}
