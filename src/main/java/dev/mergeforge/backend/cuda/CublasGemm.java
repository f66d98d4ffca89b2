package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.cuda.cublas.Cublas;

/**
 * {@link Gemm} on cuBLAS's sgemm (FFM binding, CUBLAS_PEDANTIC_MATH: true float32, never TF32).
 * The handle runs on the legacy default stream; {@link CudaContext}'s stream is a blocking stream,
 * so each product waits for the kernels and copies queued before it and they wait for it.
 */
public final class CublasGemm implements Gemm {
    private final Cublas cublas;

    /** A handle in the context current on this thread (make the CudaContext current first). */
    public CublasGemm() { this.cublas = Cublas.create(); }

    @Override
    public void linear(DeviceBuffer x, DeviceBuffer w, DeviceBuffer y, int tokens, int in, int out, int ldy) {
        // column-major view: yᵀ [out, tokens] (ld ldy) = (w viewed [in, out])ᵀ · (x viewed [in, tokens])
        cublas.sgemm(true, false, out, tokens, in, 1f, w.address, in, x.address, in, 0f, y.address, ldy);
    }

    @Override
    public void close() { cublas.close(); }
}
