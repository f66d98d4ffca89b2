package dev.mergeforge.model;

import dev.mergeforge.arch.Components;
import dev.mergeforge.arch.Role;
import dev.mergeforge.backend.Parallel;

/**
 * Causal multi-head attention with grouped-query heads (head h reads kv head h / (heads / kvHeads)),
 * in the variants the descriptors name: separate or fused q/k/v projections (concatenated, or
 * per head as GPT-NeoX stores them), q/k norms per head or over the whole projection, full or
 * partial rotary positions (a local rope base on sliding layers), a per-layer sliding window,
 * a scale other than 1/√d, and tanh soft-capping of the scores.
 */
final class Attention {
    private final ModelConfig c;
    private final Components parts;
    private final Parallel par;
    private final Rope global, local;

    Attention(ModelConfig c, Parallel par) {
        this.c = c;
        this.parts = c.parts();
        this.par = par;
        boolean rope = parts.positions() == Components.Positions.ROPE;
        this.global = rope ? new Rope(c) : null;
        this.local = rope && c.variant().localRopeTheta() != c.ropeTheta() ? new Rope(c, c.variant().localRopeTheta(), RopeScaling.NONE) : global;
    }

    /** The rope of a layer: the local base on sliding layers where the family has one. */
    Rope rope(int layer) { return c.variant().slidingAt(layer) ? local : global; }

    static final class Scratch {
        final float[] q, k, v, qkv, attn;

        Scratch(ModelConfig c, int maxTokens) {
            q = new float[maxTokens * c.qDim()];
            k = new float[maxTokens * c.kvDim()];
            v = new float[maxTokens * c.kvDim()];
            qkv = c.parts().attention() == Components.Attention.SEPARATE ? null : new float[maxTokens * (c.qDim() + 2 * c.kvDim())];
            attn = new float[maxTokens * c.qDim()];
        }
    }

    /** out [tokens, hidden] = attention over x [tokens, hidden] (before any output norm). */
    void forward(LayerTensors w, float[] x, int tokens, int pos0, float[] kc, float[] vc, Scratch s, float[] out, ActivationObserver obs) {
        int hd = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), d = c.headDim();
        switch (parts.attention()) {
            case SEPARATE -> {
                obs.accept(w.name(Role.Q), x, 0, tokens, hd);
                obs.accept(w.name(Role.K), x, 0, tokens, hd);
                obs.accept(w.name(Role.V), x, 0, tokens, hd);
                // q = x·Wqᵀ + bq, k = x·Wkᵀ + bk, v = x·Wvᵀ + bv
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.Q), qd, w.b(Role.Q), s.q, 0);
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.K), kvd, w.b(Role.K), s.k, 0);
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.V), kvd, w.b(Role.V), s.v, 0);
            }
            case FUSED_CONCAT, FUSED_PER_HEAD -> {
                int all = qd + 2 * kvd;
                obs.accept(w.name(Role.QKV), x, 0, tokens, hd);
                // qkv = x·Wᵀ + b, then split into q, k, v
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.QKV), all, w.b(Role.QKV), s.qkv, 0);
                for (int t = 0; t < tokens; t++) {
                    int r = t * all;
                    if (parts.attention() == Components.Attention.FUSED_CONCAT) {
                        // columns [q | k | v]
                        System.arraycopy(s.qkv, r, s.q, t * qd, qd);
                        System.arraycopy(s.qkv, r + qd, s.k, t * kvd, kvd);
                        System.arraycopy(s.qkv, r + qd + kvd, s.v, t * kvd, kvd);
                    } else {
                        // columns per head [q_h | k_h | v_h] (GPT-NeoX: kv heads = heads)
                        for (int head = 0; head < c.heads(); head++) {
                            int o = r + head * 3 * d;
                            System.arraycopy(s.qkv, o, s.q, t * qd + head * d, d);
                            System.arraycopy(s.qkv, o + d, s.k, t * kvd + head * d, d);
                            System.arraycopy(s.qkv, o + 2 * d, s.v, t * kvd + head * d, d);
                        }
                    }
                }
            }
        }
        qkNorm(w, Role.Q_NORM, s.q, tokens, qd, obs);
        qkNorm(w, Role.K_NORM, s.k, tokens, kvd, obs);
        if (global != null) {
            // rotate q and k by their absolute positions
            Rope r = rope(w.index);
            r.apply(s.q, tokens, c.heads(), pos0);
            r.apply(s.k, tokens, c.kvHeads(), pos0);
        }
        System.arraycopy(s.k, 0, kc, pos0 * kvd, tokens * kvd);
        System.arraycopy(s.v, 0, vc, pos0 * kvd, tokens * kvd);
        attend(w.index, s.q, tokens, pos0, kc, vc, s.attn);
        obs.accept(w.name(Role.O), s.attn, 0, tokens, qd);
        // out = attn·Woᵀ + bo
        MatMul.linear(par, s.attn, 0, tokens, qd, w.w(Role.O), hd, w.b(Role.O), out, 0);
    }

    /** Normalises queries or keys in place: each head's vector (per head) or each token's whole projection. */
    private void qkNorm(LayerTensors w, Role role, float[] x, int tokens, int width, ActivationObserver obs) {
        if (!w.has(role)) return;
        int rows = tokens, cols = width;
        if (parts.qkNorm() == Components.QkNorm.PER_HEAD) {
            rows = tokens * (width / c.headDim());
            cols = c.headDim();
        }
        obs.accept(w.name(role), x, 0, rows, cols);
        Norms.apply(parts.norm(), x, rows, cols, w.w(role), w.b(role), c.rmsNormEps(), x);
    }

    /**
     * out = softmax(cap(q·kᵀ·scale) over allowed keys)·v per head; keys j ≤ pos, and pos − j &lt; window
     * on sliding layers. Heads run in parallel.
     */
    private void attend(int layer, float[] q, int tokens, int pos0, float[] kc, float[] vc, float[] out) {
        int d = c.headDim(), qd = c.qDim(), kvd = c.kvDim(), group = c.heads() / c.kvHeads();
        int window = c.variant().slidingAt(layer) ? c.slidingWindow() : 0;
        float scale = (float) c.variant().attnScale();
        float cap = (float) c.variant().attnSoftcap();
        // blocks of many tokens: the same attention with its two products on the native GEMM
        if (AttentionProducts.use(tokens)) {
            AttentionProducts.attend(par, c, window, scale, cap, q, tokens, pos0, kc, vc, out);
            return;
        }
        Parallel.Body body = (lo, hi) -> {
            float[] score = new float[pos0 + tokens];
            for (int head = (int) lo; head < hi; head++) {
                int kvOff = (head / group) * d;
                for (int t = 0; t < tokens; t++) {
                    int pos = pos0 + t, qo = t * qd + head * d;
                    int first = window > 0 ? Math.max(0, pos - window + 1) : 0;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = first; j <= pos; j++) {
                        float sc = MatMul.dot(q, qo, kc, j * kvd + kvOff, d) * scale;
                        // sc = cap·tanh(sc/cap) (Gemma 2's attention soft-capping)
                        if (cap > 0) sc = (float) Math.tanh(sc / cap) * cap;
                        score[j] = sc;
                        if (sc > max) max = sc;
                    }
                    float sum = 0;
                    for (int j = first; j <= pos; j++) {
                        float e = (float) Math.exp(score[j] - max);
                        score[j] = e;
                        sum += e;
                    }
                    float inv = 1f / sum;
                    int oo = t * qd + head * d;
                    for (int i = 0; i < d; i++) out[oo + i] = 0f;
                    for (int j = first; j <= pos; j++) {
                        float pj = score[j] * inv;
                        int vo = j * kvd + kvOff;
                        for (int i = 0; i < d; i++) out[oo + i] += pj * vc[vo + i];
                    }
                }
            }
        };
        // one decoded token over a short context is cheaper than a fork
        if ((long) tokens * (pos0 + tokens) * qd < MatMul.SERIAL_FLOPS) body.run(0, c.heads());
        else par.forRange(c.heads(), 1, body);
    }
}
