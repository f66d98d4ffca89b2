package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeMatMul;

/**
 * {@link Attention}'s causal attention with its two products on the native GEMM, for blocks of
 * many tokens (calibration, teacher-forced scoring): per head, and per tile of {@link #TILE}
 * query tokens, S = q_h·k_hᵀ over the keys the tile can see, then the same scale, soft-cap, mask
 * and softmax as {@link Attention}, then out_h = P·v_h (v_h transposed once per head so both are
 * x·wᵀ products). Heads run in parallel, each product on its own thread.
 *
 * <p>Numerics: each score and each output element is one fused chain in ascending order (the
 * GEMM's rule, docs/calibration.md); masked keys enter the value product as exact zeros, which
 * leave the chain unchanged for finite values. Agrees with the Java path to rounding.
 */
final class AttentionProducts {
    /** Query tokens per tile: keys beyond the tile's last position are not multiplied. */
    static final int TILE = 64;

    private AttentionProducts() {}

    /** True when {@link #attend} should serve a block of this many tokens. */
    static boolean use(int tokens) { return tokens >= MatMul.NATIVE_MIN_TOKENS && NativeMatMul.available(); }

    /**
     * out = softmax(cap(q·kᵀ·scale) over keys j ≤ pos, and pos − j &lt; window when window &gt; 0)·v
     * per head, as {@link Attention}'s loop defines it.
     */
    static void attend(Parallel par, ModelConfig c, int window, float scale, float cap, float[] q, int tokens, int pos0, float[] kc,
                       float[] vc, float[] out) {
        int d = c.headDim(), qd = c.qDim(), kvd = c.kvDim(), group = c.heads() / c.kvHeads(), keys = pos0 + tokens;
        boolean meter = ProductMeter.on();
        long t0 = meter ? System.nanoTime() : 0, c0 = meter ? ProductMeter.cpuNow() : 0;
        par.forRange(c.heads(), 1, (lo, hi) -> {
            float[] s = new float[TILE * keys], vt = new float[d * keys];
            for (int head = (int) lo; head < hi; head++) {
                int kvOff = (head / group) * d;
                // vt[i, j] = v[j, kvOff + i]
                for (int j = 0; j < keys; j++) for (int i = 0; i < d; i++) vt[i * keys + j] = vc[j * kvd + kvOff + i];
                for (int a = 0; a < tokens; a += TILE) {
                    int n = Math.min(TILE, tokens - a), seen = pos0 + a + n;
                    // s[r, j] = q[a + r, head]·k[j, kv head] for the keys j < seen this tile can see
                    NativeMatMul.linear(q, (long) a * qd + (long) head * d, qd, n, d, kc, kvOff, kvd, seen, null, s, 0, keys, 1);
                    for (int r = 0; r < n; r++) softmaxRow(s, r * keys, seen, pos0 + a + r, window, scale, cap);
                    // out[a + r, head] = Σ_j p[r, j]·v[j, kv head]
                    NativeMatMul.linear(s, 0, keys, n, seen, vt, 0, keys, d, null, out, (long) a * qd + (long) head * d, qd, 1);
                }
            }
        });
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

    /**
     * Row {@code at} of scores over keys [0, seen) for the query at position {@code pos}, into
     * probabilities: scale, soft-cap and softmax over the allowed keys, exact zeros elsewhere.
     */
    private static void softmaxRow(float[] s, int at, int seen, int pos, int window, float scale, float cap) {
        int first = window > 0 ? Math.max(0, pos - window + 1) : 0;
        float max = Float.NEGATIVE_INFINITY;
        for (int j = first; j <= pos; j++) {
            float sc = s[at + j] * scale;
            // sc = cap·tanh(sc/cap) (Gemma 2's attention soft-capping)
            if (cap > 0) sc = (float) Math.tanh(sc / cap) * cap;
            s[at + j] = sc;
            if (sc > max) max = sc;
        }
        float sum = 0;
        for (int j = first; j <= pos; j++) {
            float e = (float) Math.exp(s[at + j] - max);
            s[at + j] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int j = 0; j < seen; j++) s[at + j] = j >= first && j <= pos ? s[at + j] * inv : 0f;
    }
}
