package dev.mergeforge.backend.ffm;

import dev.mergeforge.bindings.MergeOps;
import dev.mergeforge.errors.MergeforgeException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.logging.Logger;

/**
 * The calibration forward pass's products on the native library's AVX2+FMA kernel
 * ({@code mo_sgemm_nt}), used by the model package when the library is built. Unlike the merge
 * ops this is no part of the bit-exact Backend contract: it agrees with the Java MatMul to
 * rounding. {@code -Dmergeforge.matmul=java} keeps the Java kernel.
 *
 * <p>Heap arrays are copied into a confined arena per call (O(tokens·in + rows·in) next to
 * O(tokens·rows·in) work); every length is checked here before the native call.
 */
public final class NativeMatMul {
    private static final Logger LOG = Logger.getLogger(NativeMatMul.class.getName());
    private static final boolean ENABLED = !"java".equals(System.getProperty("mergeforge.matmul")) && NativeBackend.isAvailable();
    private static volatile boolean logged;

    private NativeMatMul() {}

    /** True when the native kernel is used for large products. */
    public static boolean available() { return ENABLED; }

    /**
     * y[yOff + t·yStride + o] = Σ_i x[xOff + t·in + i]·w[(wRow0 + o)·in + i] (+ b[o]) for t &lt; tokens, o &lt; rows.
     */
    public static void linear(float[] x, int xOff, int tokens, int in, float[] w, int wRow0, int rows, float[] b,
                              float[] y, int yOff, int yStride, int threads) {
        if (!ENABLED) throw new IllegalStateException("native matmul unavailable: " + NativeBackend.unavailableReason());
        long xn = (long) tokens * in, wn = (long) rows * in;
        if (tokens < 0 || in < 0 || rows < 0 || xOff < 0 || wRow0 < 0 || yOff < 0 || yStride < rows
                || xOff + xn > x.length || (long) wRow0 * in + wn > w.length || (b != null && b.length < rows)
                || (tokens > 0 && yOff + (long) (tokens - 1) * yStride + rows > y.length)) {
            throw new IllegalArgumentException("matmul operands too short: x " + x.length + " from " + xOff + " for " + tokens + "x" + in
                    + ", w " + w.length + " from row " + wRow0 + " for " + rows + "x" + in + ", y " + y.length + " from " + yOff);
        }
        if (!logged) {
            logged = true;
            LOG.info("forward-pass products on the native AVX2+FMA kernel (-Dmergeforge.matmul=java for the Java one)");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = arena.allocate(Math.max(4, xn * 4), 64), ws = arena.allocate(Math.max(4, wn * 4), 64);
            MemorySegment.copy(x, xOff, xs, ValueLayout.JAVA_FLOAT, 0, (int) xn);
            MemorySegment.copy(w, wRow0 * in, ws, ValueLayout.JAVA_FLOAT, 0, (int) wn);
            MemorySegment bs = b == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, java.util.Arrays.copyOf(b, rows));
            MemorySegment ys = arena.allocate(Math.max(4, (long) tokens * rows * 4), 64);
            int rc = MergeOps.mo_sgemm_nt(xs, tokens, in, ws, rows, bs, ys, rows, threads);
            if (rc != MergeOps.MO_OK()) throw new MergeforgeException("native matmul failed (code " + rc + ") for " + tokens + "x" + in + " by " + rows);
            for (int t = 0; t < tokens; t++) {
                MemorySegment.copy(ys, ValueLayout.JAVA_FLOAT, (long) t * rows * 4, y, yOff + t * yStride, rows);
            }
        }
    }
}
