package dev.mergeforge.backend.cuda;

/**
 * Launches of the forward pass's kernels (kernels/calib.cu) on device-resident buffers; the maths
 * of each is stated there. Activations are row-major [rows, width]; {@code pos} holds each row's
 * position in its sequence (int32).
 */
public final class ForwardOps {
    /** mf_attention's shared Q and K/V tiles hold this many dims per row (MF_MAX_HEAD_DIM). */
    public static final int MAX_HEAD_DIM = 256;
    /** Query rows per mf_attention block (MF_ATT_QT). */
    static final int ATTENTION_ROWS = 16;
    private static final int THREADS = DeviceOps.THREADS;

    private final Launcher launcher;

    public ForwardOps(Launcher launcher) { this.launcher = launcher; }

    /** out[r] = x[r] / sqrt(mean(x[r]²) + eps) ⊙ g for each of {@code rows} rows of {@code width}. */
    public void rmsNorm(DeviceBuffer x, DeviceBuffer g, double eps, int width, DeviceBuffer out, long rows) {
        launcher.launch(Kernel.RMSNORM, DeviceOps.grid(rows, Kernel.RMSNORM.block), Kernel.RMSNORM.block, x, g, eps, width, out, rows);
    }

    /** Rotates x [rows, heads·headDim] in place by each row's position (cos/sin [positions, headDim/2]). */
    public void rope(DeviceBuffer x, DeviceBuffer cos, DeviceBuffer sin, DeviceBuffer pos, int heads, int headDim, long rows) {
        long pairs = rows * heads * (headDim / 2);
        launcher.launch(Kernel.ROPE, DeviceOps.grid(pairs, THREADS), THREADS, x, cos, sin, pos, heads, headDim, pairs);
    }

    /**
     * out = causal (windowed when window &gt; 0) softmax(q·kᵀ·scale)·v per head, GQA; one block per
     * ({@link #ATTENTION_ROWS} query rows, head).
     */
    public void attention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer pos, int heads, int kvHeads, int headDim,
                   int window, float scale, DeviceBuffer out, long rows) {
        if (headDim > MAX_HEAD_DIM) throw new IllegalArgumentException("head_dim " + headDim + " > " + MAX_HEAD_DIM);
        long tasks = (rows + ATTENTION_ROWS - 1) / ATTENTION_ROWS * heads;
        launcher.launch(Kernel.ATTENTION, DeviceOps.grid(tasks, 1), Kernel.ATTENTION.block,
                q, k, v, pos, heads, kvHeads, headDim, window, scale, out, rows);
    }

    /** gate = silu(gate) ⊙ up over n elements. */
    public void siluMul(DeviceBuffer gate, DeviceBuffer up, long n) {
        launcher.launch(Kernel.SILU_MUL, DeviceOps.grid(n, THREADS), THREADS, gate, up, n);
    }

    /** y[r, c] += b[c] for y [n / cols, cols]. */
    public void biasAdd(DeviceBuffer y, DeviceBuffer b, long cols, long n) {
        launcher.launch(Kernel.BIAS_ADD, DeviceOps.grid(n, THREADS), THREADS, y, b, cols, n);
    }

    /** acc[j] += Σ_r |x[r, j]| (float64, rows in order) for x [rows, width]. */
    public void absSumCols(DeviceBuffer x, long rows, int width, DeviceBuffer acc) {
        launcher.launch(Kernel.ABS_SUM_COLS, DeviceOps.grid(width, THREADS), THREADS, x, rows, width, acc);
    }
}
