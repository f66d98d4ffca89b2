package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeMatMul;

/**
 * {@link Attention}'s causal attention for blocks of many tokens (calibration, teacher-forced
 * scoring) in one native call ({@code mo_attention}): per head and tile of {@link #TILE} query
 * tokens, S = q_h·k_hᵀ over the keys the tile can see, the same scale, soft-cap, mask and softmax
 * as {@link Attention}, then out_h = P·v_h, both products on the GEMM's kernels; the tiles of all
 * heads run on the native worker pool ({@code par.threads()} workers).
 *
 * <p>Numerics: each score and each output element is one fused chain in ascending order (the
 * GEMM's rule); masked keys enter the value product as exact zeros; the softmax's exp is a fixed
 * float polynomial and its sum a fixed eight-lane order (docs/calibration.md, "Numerics and
 * speed"). The same bits for every thread count and SIMD variant; agrees with the Java path
 * (Math.exp, sequential sums) to rounding.
 */
final class AttentionProducts {
    /** Query tokens per tile: keys beyond the tile's last position are not multiplied. */
    static final int TILE = NativeMatMul.ATTENTION_TILE;

    private AttentionProducts() {}

    /** True when {@link #attend} should serve a block of this many tokens. */
    static boolean use(int tokens) { return tokens >= MatMul.NATIVE_MIN_TOKENS && NativeMatMul.available(); }

    /**
     * out = softmax(cap(q·kᵀ·scale) over keys j ≤ pos, and pos − j &lt; window when window &gt; 0)·v
     * per head, as {@link Attention}'s loop defines it.
     */
    static void attend(Parallel par, ModelConfig c, int window, float scale, float cap, float[] q, int tokens, int pos0, float[] kc,
                       float[] vc, float[] out) {
        boolean meter = ProductMeter.on();
        long t0 = meter ? System.nanoTime() : 0, c0 = meter ? ProductMeter.cpuNow() : 0;
        NativeMatMul.attention(q, tokens, pos0, kc, vc, c.heads(), c.kvHeads(), c.headDim(), window, scale, cap, out, par.threads());
        if (meter) ProductMeter.add(ProductMeter.Kind.ATTENTION, flops(c, tokens, pos0), System.nanoTime() - t0, ProductMeter.cpuNow() - c0);
    }

    /** The multiply-adds (×2) the tiles do: two products of n·d·seen per head and tile. */
    static long flops(ModelConfig c, int tokens, int pos0) {
        long f = 0;
        for (int a = 0; a < tokens; a += TILE) {
            int n = Math.min(TILE, tokens - a);
            f += 2L * 2 * n * c.headDim() * (pos0 + a + n);
        }
        return f * c.heads();
    }
}
