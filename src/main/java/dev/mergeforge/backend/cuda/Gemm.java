package dev.mergeforge.backend.cuda;

/**
 * The float32 products of the device forward pass, on device buffers: cuBLAS on a GPU
 * ({@link CublasGemm}); the tests plug in a host loop over the emulator's memory so the whole
 * pass runs without a GPU. Work is ordered with the {@link Device}'s launches and copies.
 */
public interface Gemm extends AutoCloseable {
    /**
     * y[t, o] = Σ_i x[t, i]·w[o, i] for t &lt; tokens, o &lt; out: x [tokens, in] and w [out, in]
     * row-major (nn.Linear's layout), y's rows {@code ldy} floats apart (ldy ≥ out).
     */
    void linear(DeviceBuffer x, DeviceBuffer w, DeviceBuffer y, int tokens, int in, int out, int ldy);

    @Override void close();
}
