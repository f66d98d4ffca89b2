package dev.mergeforge.model;

import dev.mergeforge.arch.Components;
import dev.mergeforge.arch.Role;
import dev.mergeforge.backend.Parallel;

/**
 * One decoder layer, float32, over the tokens at positions [pos0, pos0 + tokens) of one sequence,
 * composed from the family's {@link Components}: optional norms before and after attention and
 * MLP (pre-norm Llama, Gemma's sandwich, OLMo 2's post-norms), sequential or parallel residual.
 * Keys and values of the earlier positions come from (and the new ones go into) the caller's K/V
 * buffers, so the same code serves whole calibration blocks (pos0 = 0) and incremental decoding.
 */
final class DecoderLayer {
    private final ModelConfig c;
    private final Components parts;
    private final Attention attention;
    private final FeedForward mlp;

    DecoderLayer(ModelConfig c, Parallel par) {
        this.c = c;
        this.parts = c.parts();
        this.attention = new Attention(c, par);
        this.mlp = new FeedForward(c, par);
    }

    /** The rotary tables of the global rope (for the device pass, which covers full rotation only). */
    Rope rope() { return attention.rope(0); }

    /** Per-call buffers sized for {@code maxTokens} new tokens. */
    static final class Scratch {
        final float[] xn, ao, mo;
        final Attention.Scratch attn;
        final FeedForward.Scratch mlp;

        Scratch(ModelConfig c, int maxTokens) {
            xn = new float[maxTokens * c.hiddenSize()];
            ao = new float[maxTokens * c.hiddenSize()];
            mo = new float[maxTokens * c.hiddenSize()];
            attn = new Attention.Scratch(c, maxTokens);
            mlp = new FeedForward.Scratch(c, maxTokens);
        }
    }

    /**
     * Updates h [tokens, hidden] in place. kCache/vCache hold [capacity, kvDim]; rows
     * [0, pos0) must already be filled; rows [pos0, pos0 + tokens) are written here.
     */
    void forward(LayerTensors w, float[] h, int tokens, int pos0, float[] kCache, float[] vCache, Scratch s, ActivationObserver obs) {
        int hd = c.hiddenSize(), n = tokens * hd;
        // a = attn(norm(h)) (norm when the family has one before attention)
        float[] x = norm(w, Role.ATTN_NORM, h, tokens, s.xn, obs);
        attention.forward(w, x, tokens, pos0, kCache, vCache, s.attn, s.ao, obs);
        // a = norm(a) for post-norm families (Gemma's post_attention_layernorm, OLMo 2)
        norm(w, Role.ATTN_OUT_NORM, s.ao, tokens, s.ao, obs);
        if (c.variant().parallelResidual()) {
            // h = h + attn(ln1(h)) + mlp(ln2(h))  (GPT-NeoX's parallel residual)
            float[] m = norm(w, Role.MLP_NORM, h, tokens, s.xn, obs);
            mlp.forward(w, m, tokens, s.mlp, s.mo, obs);
            norm(w, Role.MLP_OUT_NORM, s.mo, tokens, s.mo, obs);
            for (int i = 0; i < n; i++) h[i] = s.mo[i] + s.ao[i] + h[i];
            return;
        }
        // h += a
        for (int i = 0; i < n; i++) h[i] += s.ao[i];
        // h += norm_out(mlp(norm(h)))
        float[] m = norm(w, Role.MLP_NORM, h, tokens, s.xn, obs);
        mlp.forward(w, m, tokens, s.mlp, s.mo, obs);
        norm(w, Role.MLP_OUT_NORM, s.mo, tokens, s.mo, obs);
        for (int i = 0; i < n; i++) h[i] += s.mo[i];
    }

    /** norm_role(x) into out (observing x), or x itself when the layer has no norm with that role. */
    private float[] norm(LayerTensors w, Role role, float[] x, int tokens, float[] out, ActivationObserver obs) {
        if (!w.has(role)) return x;
        obs.accept(w.name(role), x, 0, tokens, c.hiddenSize());
        Norms.apply(parts.norm(), x, tokens, c.hiddenSize(), w.w(role), w.b(role), c.rmsNormEps(), out);
        return out;
    }
}
