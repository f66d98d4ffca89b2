package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;

/**
 * One Llama decoder layer (pre-norm attention + SwiGLU MLP, both residual), float32, over the
 * tokens at positions [pos0, pos0 + tokens) of one sequence. Keys and values of the earlier
 * positions come from (and the new ones go into) the caller's K/V buffers, so the same code
 * serves whole calibration blocks (pos0 = 0) and incremental decoding.
 */
final class DecoderLayer {
    private final ModelConfig c;
    private final Rope rope;
    private final Parallel par;

    DecoderLayer(ModelConfig c, Rope rope, Parallel par) {
        this.c = c;
        this.rope = rope;
        this.par = par;
    }

    Rope rope() { return rope; }

    /** Per-call buffers sized for {@code maxTokens} new tokens. */
    static final class Scratch {
        final float[] xn, q, k, v, attn, gate, up;

        Scratch(ModelConfig c, int maxTokens) {
            xn = new float[maxTokens * c.hiddenSize()];
            q = new float[maxTokens * c.qDim()];
            k = new float[maxTokens * c.kvDim()];
            v = new float[maxTokens * c.kvDim()];
            attn = new float[maxTokens * c.qDim()];
            gate = new float[maxTokens * c.intermediateSize()];
            up = new float[maxTokens * c.intermediateSize()];
        }
    }

    /**
     * Updates h [tokens, hidden] in place. kCache/vCache hold [capacity, kvDim]; rows
     * [0, pos0) must already be filled; rows [pos0, pos0 + tokens) are written here.
     */
    void forward(LayerWeights w, float[] h, int tokens, int pos0, float[] kCache, float[] vCache, Scratch s,
                 ActivationObserver obs) {
        int hd = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), f = c.intermediateSize();
        String p = LayerWeights.prefix(w.index());
        obs.accept(p + "input_layernorm.weight", h, 0, tokens, hd);
        // xn = h / sqrt(mean(h²) + eps) ⊙ g
        rmsNorm(h, tokens, hd, w.inputNorm(), c.rmsNormEps(), s.xn);
        obs.accept(p + "self_attn.q_proj.weight", s.xn, 0, tokens, hd);
        obs.accept(p + "self_attn.k_proj.weight", s.xn, 0, tokens, hd);
        obs.accept(p + "self_attn.v_proj.weight", s.xn, 0, tokens, hd);
        // q = xn·Wqᵀ + bq, k = xn·Wkᵀ + bk, v = xn·Wvᵀ + bv
        MatMul.linear(par, s.xn, 0, tokens, hd, w.q(), qd, w.qBias(), s.q, 0);
        MatMul.linear(par, s.xn, 0, tokens, hd, w.k(), kvd, w.kBias(), s.k, 0);
        MatMul.linear(par, s.xn, 0, tokens, hd, w.v(), kvd, w.vBias(), s.v, 0);
        // rotate q and k by their absolute positions
        rope.apply(s.q, tokens, c.heads(), pos0);
        rope.apply(s.k, tokens, c.kvHeads(), pos0);
        System.arraycopy(s.k, 0, kCache, pos0 * kvd, tokens * kvd);
        System.arraycopy(s.v, 0, vCache, pos0 * kvd, tokens * kvd);
        attention(s.q, tokens, pos0, kCache, vCache, s.attn);
        obs.accept(p + "self_attn.o_proj.weight", s.attn, 0, tokens, qd);
        // h += attn·Woᵀ + bo
        MatMul.linear(par, s.attn, 0, tokens, qd, w.o(), hd, w.oBias(), s.xn, 0);
        for (int i = 0; i < tokens * hd; i++) h[i] += s.xn[i];
        obs.accept(p + "post_attention_layernorm.weight", h, 0, tokens, hd);
        rmsNorm(h, tokens, hd, w.postNorm(), c.rmsNormEps(), s.xn);
        obs.accept(p + "mlp.gate_proj.weight", s.xn, 0, tokens, hd);
        obs.accept(p + "mlp.up_proj.weight", s.xn, 0, tokens, hd);
        MatMul.linear(par, s.xn, 0, tokens, hd, w.gate(), f, w.gateBias(), s.gate, 0);
        MatMul.linear(par, s.xn, 0, tokens, hd, w.up(), f, w.upBias(), s.up, 0);
        // a = silu(gate) ⊙ up, silu(z) = z / (1 + e^-z)
        for (int i = 0; i < tokens * f; i++) {
            float z = s.gate[i];
            s.gate[i] = z / (1f + (float) Math.exp(-z)) * s.up[i];
        }
        obs.accept(p + "mlp.down_proj.weight", s.gate, 0, tokens, f);
        // h += a·Wdᵀ + bd
        MatMul.linear(par, s.gate, 0, tokens, f, w.down(), hd, w.downBias(), s.xn, 0);
        for (int i = 0; i < tokens * hd; i++) h[i] += s.xn[i];
    }

    /** out[t] = x[t] / sqrt(mean_j x[t,j]² + eps) ⊙ g, the mean of squares taken in double. */
    static void rmsNorm(float[] x, int tokens, int width, float[] g, double eps, float[] out) {
        for (int t = 0; t < tokens; t++) {
            int o = t * width;
            double ss = 0;
            for (int j = 0; j < width; j++) ss += (double) x[o + j] * x[o + j];
            float r = (float) (1.0 / Math.sqrt((float) (ss / width) + eps));
            for (int j = 0; j < width; j++) out[o + j] = g[j] * (x[o + j] * r);
        }
    }

    /**
     * Causal grouped-query attention: head h reads kv head h / (heads / kvHeads);
     * out = softmax(q·kᵀ / sqrt(d) over allowed keys)·v. Heads run in parallel.
     */
    private void attention(float[] q, int tokens, int pos0, float[] kc, float[] vc, float[] out) {
        int d = c.headDim(), qd = c.qDim(), kvd = c.kvDim(), group = c.heads() / c.kvHeads();
        int window = c.slidingWindow();
        float scale = (float) (1.0 / Math.sqrt(d));
        dev.mergeforge.backend.Parallel.Body body = (lo, hi) -> {
            float[] score = new float[pos0 + tokens];
            for (int head = (int) lo; head < hi; head++) {
                int kvOff = (head / group) * d;
                for (int t = 0; t < tokens; t++) {
                    int pos = pos0 + t, qo = t * qd + head * d;
                    // keys j with j ≤ pos (and pos − j < window for Mistral's sliding window)
                    int first = window > 0 ? Math.max(0, pos - window + 1) : 0;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = first; j <= pos; j++) {
                        float sc = MatMul.dot(q, qo, kc, j * kvd + kvOff, d) * scale;
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
