package dev.mergeforge.backend.ffm;

import dev.mergeforge.bindings.MergeOps;
import dev.mergeforge.errors.MergeforgeException;

import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.logging.Logger;

/**
 * The calibration forward pass's products on the native library's blocked GEMM
 * ({@code mo_sgemm_nt}, AVX2+FMA with a portable fallback), used by the model package when the
 * library is built. Unlike the merge ops this is no part of the Backend contract: each output is one
 * fused multiply-add chain in ascending inner order (docs/calibration.md, "Numerics and speed"), the
 * same bits for any thread count and either SIMD path, and equal to the Java MatMul to rounding.
 * {@code -Dmergeforge.matmul=java} keeps the Java kernel.
 *
 * <p>No copies: the float arrays go to C as pinned heap segments ({@link Linker.Option#critical}
 * with heap access), so the garbage collector waits for a product to finish (milliseconds to tens
 * of milliseconds on calibration blocks). Every offset and length is checked here before the call.
 */
public final class NativeMatMul {
    private static final Logger LOG = Logger.getLogger(NativeMatMul.class.getName());
    private static final boolean ENABLED = !"java".equals(System.getProperty("mergeforge.matmul")) && NativeBackend.isAvailable();
    private static volatile boolean logged;

    private NativeMatMul() {}

    /** Holds the pinned-heap handle; initialised on first use, only when the library is loaded. */
    private static final class Critical {
        static final MethodHandle SGEMM = Linker.nativeLinker().downcallHandle(MergeOps.mo_sgemm_nt$address(),
                MergeOps.mo_sgemm_nt$descriptor(), Linker.Option.critical(true));
        static final MethodHandle LOAD = Linker.nativeLinker().downcallHandle(MergeOps.mo_load$address(),
                MergeOps.mo_load$descriptor(), Linker.Option.critical(true));
        static final MethodHandle ATTENTION = Linker.nativeLinker().downcallHandle(MergeOps.mo_attention$address(),
                MergeOps.mo_attention$descriptor(), Linker.Option.critical(true));
    }

    /** True when the native kernel is used for large products. */
    public static boolean available() { return ENABLED; }

    /**
     * y[yOff + t·yStride + o] = Σ_i x[xOff + t·in + i]·w[(wRow0 + o)·in + i] (+ b[o]) for t &lt; tokens, o &lt; rows.
     */
    public static void linear(float[] x, int xOff, int tokens, int in, float[] w, int wRow0, int rows, float[] b,
                              float[] y, int yOff, int yStride, int threads) {
        linear(x, xOff, in, tokens, in, w, (long) wRow0 * in, in, rows, b, y, yOff, yStride, threads);
    }

    /**
     * y[yOff + t·ldy + o] = Σ_i x[xOff + t·ldx + i]·w[wOff + o·ldw + i] (+ b[o]) for t &lt; tokens,
     * o &lt; rows, i &lt; in: x·wᵀ with row strides, e.g. one head's queries against its keys.
     */
    public static void linear(float[] x, long xOff, int ldx, int tokens, int in, float[] w, long wOff, int ldw, int rows,
                              float[] b, float[] y, long yOff, int ldy, int threads) {
        if (!ENABLED) throw new IllegalStateException("native matmul unavailable: " + NativeBackend.unavailableReason());
        if (tokens < 0 || in < 0 || rows < 0 || xOff < 0 || wOff < 0 || yOff < 0 || ldx < in || ldw < in || ldy < rows
                || !covers(x.length, xOff, tokens, ldx, in) || !covers(w.length, wOff, rows, ldw, in)
                || (b != null && b.length < rows) || !covers(y.length, yOff, tokens, ldy, rows)) {
            throw new IllegalArgumentException("matmul operands too short: x " + x.length + " from " + xOff + " for " + tokens + "x" + in
                    + " (stride " + ldx + "), w " + w.length + " from " + wOff + " for " + rows + "x" + in + " (stride " + ldw
                    + "), y " + y.length + " from " + yOff + " (stride " + ldy + ")");
        }
        if (tokens == 0 || rows == 0) return;
        if (!logged) {
            logged = true;
            LOG.info("forward-pass products on the native GEMM (" + NativeBackend.simd() + "; -Dmergeforge.matmul=java for the Java one)");
        }
        MemorySegment xs = MemorySegment.ofArray(x).asSlice(xOff * 4), ws = MemorySegment.ofArray(w).asSlice(wOff * 4);
        MemorySegment ys = MemorySegment.ofArray(y).asSlice(yOff * 4);
        MemorySegment bs = b == null ? MemorySegment.NULL : MemorySegment.ofArray(b);
        int rc;
        try {
            rc = (int) Critical.SGEMM.invokeExact(xs, (long) tokens, (long) in, (long) ldx, ws, (long) rows, (long) ldw, bs, ys,
                    (long) ldy, threads);
        } catch (Throwable e) {
            throw new AssertionError("mo_sgemm_nt downcall failed", e);
        }
        if (rc != MergeOps.MO_OK()) throw new MergeforgeException("native matmul failed (code " + rc + ") for " + tokens + "x" + in + " by " + rows);
    }

    /** Query tokens per tile of {@link #attention}: keys beyond a tile's last position are not multiplied. */
    public static final int ATTENTION_TILE = 64;

    /**
     * One layer's causal attention for a block of {@code tokens} queries at positions pos0.. ({@code
     * mo_attention}): out[t, h] = Σ_j p[t, j]·v[j, kv(h)] with p the softmax over keys j ≤ pos (and
     * pos − j &lt; window when window &gt; 0) of cap·tanh(s/cap) (cap &gt; 0) or s, s = q[t, h]·k[j, kv(h)]·scale;
     * kv(h) = h / (heads / kvHeads). q and out hold heads·headDim floats per token, the k and v caches
     * kvHeads·headDim per position for positions [0, pos0 + tokens). Tiles of {@link #ATTENTION_TILE}
     * queries per head run on {@code threads} workers; the same bits for any thread count and SIMD
     * variant (docs/calibration.md, "Numerics and speed").
     */
    public static void attention(float[] q, int tokens, int pos0, float[] k, float[] v, int heads, int kvHeads, int headDim, int window,
                                 float scale, float cap, float[] out, int threads) {
        if (!ENABLED) throw new IllegalStateException("native matmul unavailable: " + NativeBackend.unavailableReason());
        long qd = (long) heads * headDim, kvd = (long) kvHeads * headDim, keys = (long) pos0 + tokens;
        if (tokens < 0 || pos0 < 0 || heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || headDim <= 0 || window < 0
                || q.length < tokens * qd || out.length < tokens * qd || k.length < keys * kvd || v.length < keys * kvd) {
            throw new IllegalArgumentException("attention operands do not fit: " + tokens + " tokens after " + pos0 + ", " + heads + " heads on "
                    + kvHeads + " kv heads of " + headDim + ", window " + window + "; q " + q.length + ", k " + k.length + ", v " + v.length
                    + ", out " + out.length + " floats");
        }
        if (tokens == 0) return;
        int rc;
        try {
            rc = (int) Critical.ATTENTION.invokeExact(MemorySegment.ofArray(q), (long) tokens, qd, MemorySegment.ofArray(k),
                    MemorySegment.ofArray(v), kvd, (long) pos0, heads, kvHeads, (long) headDim, (long) window, scale, cap,
                    MemorySegment.ofArray(out), qd, threads);
        } catch (Throwable e) {
            throw new AssertionError("mo_attention downcall failed", e);
        }
        if (rc != MergeOps.MO_OK()) throw new MergeforgeException("native attention failed (code " + rc + ") for " + tokens + " tokens");
    }

    /**
     * out[at + i] = the float32 of element i of {@code src}, i &lt; n, for bf16 ({@code half == false})
     * or IEEE half elements, little-endian: the forward pass's layer conversion on the native
     * library's SIMD loader ({@code mo_load}, one thread), the same bits as {@code Floats.bf16ToFloat}
     * and {@code Float.float16ToFloat}. {@code src} holds exactly the n elements.
     */
    public static void toFloats(MemorySegment src, boolean half, float[] out, int at, int n) {
        if (!ENABLED) throw new IllegalStateException("native matmul unavailable: " + NativeBackend.unavailableReason());
        if (n < 0 || at < 0 || (long) at + n > out.length || src.byteSize() != 2L * n) {
            throw new IllegalArgumentException("conversion operands do not fit: " + n + " elements from " + src.byteSize() + " bytes into "
                    + out.length + " floats at " + at);
        }
        if (n == 0) return;
        int rc;
        try {
            rc = (int) Critical.LOAD.invokeExact(half ? MergeOps.MO_DTYPE_F16() : MergeOps.MO_DTYPE_BF16(), src,
                    MemorySegment.ofArray(out).asSlice(at * 4L), (long) n, NativeBackend.nanMode(), 1);
        } catch (Throwable e) {
            throw new AssertionError("mo_load downcall failed", e);
        }
        if (rc != MergeOps.MO_OK()) throw new MergeforgeException("native conversion failed (code " + rc + ") for " + n + " elements");
    }

    /** True when rows of {@code cols} floats at {@code off + r·stride}, r &lt; rows, lie inside {@code length}. */
    private static boolean covers(int length, long off, int rows, int stride, int cols) {
        return rows == 0 || off + (long) (rows - 1) * stride + cols <= length;
    }

    /**
     * Runs the native FMA loop ({@code mo_fma_peak}) for {@code iters} rounds on {@code threads}
     * workers and returns the floating-point operations it did; the caller times it.
     */
    public static long fmaPeak(long iters, int threads) {
        if (!NativeBackend.isAvailable()) throw new IllegalStateException("native library unavailable: " + NativeBackend.unavailableReason());
        long flops = MergeOps.mo_fma_peak(iters, threads);
        if (flops < 0) throw new MergeforgeException("native FMA loop failed (code " + flops + ")");
        return flops;
    }
}
