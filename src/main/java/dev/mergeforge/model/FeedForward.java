package dev.mergeforge.model;

import dev.mergeforge.arch.Components;
import dev.mergeforge.arch.Role;
import dev.mergeforge.backend.Parallel;

/**
 * The feed-forward block in the variants the descriptors name: gated (separate or fused
 * [gate; up]), plain (GPT-2, GPT-NeoX) or a routed mixture of gated experts (Mixtral, Qwen3-MoE;
 * Shazeer et al. 2017, arXiv 1701.06538), with Qwen2-MoE's shared expert where the layer has one.
 * An expert sees, and reports to the observer, only the tokens the router sent to it; an expert no
 * token reached is reported with zero tokens. The shared expert sees every token.
 */
final class FeedForward {
    private final ModelConfig c;
    private final Components parts;
    private final Parallel par;
    private final Activation act;
    /** Activations per parallel task of the gate (an exp each). */
    private static final int GATE_CHUNK = 1 << 14;

    FeedForward(ModelConfig c, Parallel par) {
        this.c = c;
        this.parts = c.parts();
        this.par = par;
        this.act = c.variant().activation();
    }

    static final class Scratch {
        final float[] gate, up, rows, routed;

        Scratch(ModelConfig c, int maxTokens) {
            int f = c.parts().mlp() == Components.Mlp.MOE ? Math.max(c.variant().expertIntermediate(), c.variant().sharedIntermediate())
                    : c.intermediateSize();
            boolean fused = c.parts().mlp() == Components.Mlp.FUSED_GATED;
            gate = new float[maxTokens * f * (fused ? 2 : 1)];
            up = new float[maxTokens * f];
            boolean moe = c.parts().mlp() == Components.Mlp.MOE;
            rows = moe ? new float[maxTokens * c.hiddenSize()] : null;
            routed = moe ? new float[maxTokens * c.hiddenSize()] : null;
        }
    }

    /** out [tokens, hidden] = mlp(x). */
    void forward(LayerTensors w, float[] x, int tokens, Scratch s, float[] out, ActivationObserver obs) {
        int hd = c.hiddenSize(), f = c.intermediateSize();
        switch (parts.mlp()) {
            case GATED -> {
                obs.accept(w.name(Role.GATE), x, 0, tokens, hd);
                obs.accept(w.name(Role.UP), x, 0, tokens, hd);
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.GATE), f, w.b(Role.GATE), s.gate, 0);
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.UP), f, w.b(Role.UP), s.up, 0);
                gated(s.gate, s.up, tokens * f);
                down(w, Role.DOWN, s.gate, tokens, f, out, obs);
            }
            case FUSED_GATED -> {
                obs.accept(w.name(Role.GATE_UP), x, 0, tokens, hd);
                // [gate | up] = x·Wᵀ, gate the first f outputs
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.GATE_UP), 2 * f, w.b(Role.GATE_UP), s.gate, 0);
                for (int t = 0; t < tokens; t++) {
                    System.arraycopy(s.gate, t * 2 * f + f, s.up, t * f, f);
                    System.arraycopy(s.gate, t * 2 * f, s.gate, t * f, f);
                }
                gated(s.gate, s.up, tokens * f);
                down(w, Role.DOWN, s.gate, tokens, f, out, obs);
            }
            case PLAIN -> {
                obs.accept(w.name(Role.UP), x, 0, tokens, hd);
                // a = act(x·Wuᵀ + bu)
                MatMul.linear(par, x, 0, tokens, hd, w.w(Role.UP), f, w.b(Role.UP), s.gate, 0);
                for (int i = 0; i < tokens * f; i++) s.gate[i] = act.apply(s.gate[i]);
                down(w, Role.DOWN, s.gate, tokens, f, out, obs);
            }
            case MOE -> moe(w, x, tokens, s, out, obs);
        }
    }

    /** gate[i] = act(gate[i]) ⊙ up[i], on the pass's threads for blocks (each element on its own: the same bits). */
    private void gated(float[] gate, float[] up, int n) {
        Parallel.Body body = (lo, hi) -> {
            for (int i = (int) lo; i < hi; i++) gate[i] = act.apply(gate[i]) * up[i];
        };
        // a decoded token's few thousand activations cost less than a fork
        if (n < GATE_CHUNK) body.run(0, n);
        else par.forRange(n, GATE_CHUNK, body);
    }

    /** out = a·Wdᵀ + bd, observing a. */
    private void down(LayerTensors w, Role role, float[] a, int tokens, int f, float[] out, ActivationObserver obs) {
        obs.accept(w.name(role), a, 0, tokens, f);
        MatMul.linear(par, a, 0, tokens, f, w.w(role), c.hiddenSize(), w.b(role), out, 0);
    }

    /**
     * p = softmax(x·Wrᵀ) per token (float32 logits, as transformers); each token goes to its top-k
     * experts with weights p (renormalised to sum 1 where the family does); out = Σ weight · expert(x),
     * summed over experts in index order.
     */
    private void moe(LayerTensors w, float[] x, int tokens, Scratch s, float[] out, ActivationObserver obs) {
        int hd = c.hiddenSize(), experts = c.variant().experts(), k = c.variant().topK(), fe = c.variant().expertIntermediate();
        obs.accept(w.name(Role.ROUTER), x, 0, tokens, hd);
        float[] logits = new float[tokens * experts];
        MatMul.linear(par, x, 0, tokens, hd, w.w(Role.ROUTER), experts, null, logits, 0);
        int[] chosen = new int[tokens * k];
        float[] weight = new float[tokens * k];
        route(logits, tokens, experts, k, chosen, weight);
        java.util.Arrays.fill(out, 0, tokens * hd, 0f);
        int[] who = new int[tokens];
        float[] wt = new float[tokens];
        for (int e = 0; e < experts; e++) {
            // the rows routed to expert e, in token order
            int n = 0;
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < k; j++) {
                    if (chosen[t * k + j] == e) {
                        who[n] = t;
                        wt[n] = weight[t * k + j];
                        System.arraycopy(x, t * hd, s.rows, n * hd, hd);
                        n++;
                    }
                }
            }
            float[][] ew = w.experts[e];
            String[] names = w.expertNames[e];
            obs.accept(names[0], s.rows, 0, n, hd);
            obs.accept(names[1], s.rows, 0, n, hd);
            if (n > 0) {
                MatMul.linear(par, s.rows, 0, n, hd, ew[0], fe, null, s.gate, 0);
                MatMul.linear(par, s.rows, 0, n, hd, ew[1], fe, null, s.up, 0);
                gated(s.gate, s.up, n * fe);
            }
            obs.accept(names[2], s.gate, 0, n, fe);
            if (n == 0) continue;
            MatMul.linear(par, s.gate, 0, n, fe, ew[2], hd, null, s.routed, 0);
            // out[t] += weight · expert(x[t])
            for (int r = 0; r < n; r++) {
                int o = who[r] * hd;
                for (int j = 0; j < hd; j++) out[o + j] += s.routed[r * hd + j] * wt[r];
            }
        }
        if (w.has(Role.SHARED_GATE)) shared(w, x, tokens, s, out, obs);
    }

    /**
     * Qwen2-MoE's shared expert, added after the routed sum: out[t] += sigmoid(g·x[t]) · mlp_s(x[t]),
     * g the one-row shared_expert_gate, mlp_s a gated MLP of width shared_expert_intermediate_size.
     */
    private void shared(LayerTensors w, float[] x, int tokens, Scratch s, float[] out, ActivationObserver obs) {
        int hd = c.hiddenSize(), fs = c.variant().sharedIntermediate();
        obs.accept(w.name(Role.SHARED_GATE), x, 0, tokens, hd);
        obs.accept(w.name(Role.SHARED_UP), x, 0, tokens, hd);
        obs.accept(w.name(Role.SHARED_EXPERT_GATE), x, 0, tokens, hd);
        MatMul.linear(par, x, 0, tokens, hd, w.w(Role.SHARED_GATE), fs, w.b(Role.SHARED_GATE), s.gate, 0);
        MatMul.linear(par, x, 0, tokens, hd, w.w(Role.SHARED_UP), fs, w.b(Role.SHARED_UP), s.up, 0);
        gated(s.gate, s.up, tokens * fs);
        obs.accept(w.name(Role.SHARED_DOWN), s.gate, 0, tokens, fs);
        MatMul.linear(par, s.gate, 0, tokens, fs, w.w(Role.SHARED_DOWN), hd, w.b(Role.SHARED_DOWN), s.routed, 0);
        float[] g = new float[tokens];
        MatMul.linear(par, x, 0, tokens, hd, w.w(Role.SHARED_EXPERT_GATE), 1, w.b(Role.SHARED_EXPERT_GATE), g, 0);
        for (int t = 0; t < tokens; t++) {
            float sig = (float) (1.0 / (1.0 + Math.exp(-g[t])));
            for (int j = 0; j < hd; j++) out[t * hd + j] += sig * s.routed[t * hd + j];
        }
    }

    /** Top-k of softmax(logits) per token (ties to the lower index), renormalised where the family does. */
    private void route(float[] logits, int tokens, int experts, int k, int[] chosen, float[] weight) {
        float[] p = new float[experts];
        for (int t = 0; t < tokens; t++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) max = Math.max(max, logits[t * experts + e]);
            float sum = 0;
            for (int e = 0; e < experts; e++) {
                p[e] = (float) Math.exp(logits[t * experts + e] - max);
                sum += p[e];
            }
            for (int e = 0; e < experts; e++) p[e] /= sum;
            boolean[] taken = new boolean[experts];
            float total = 0;
            for (int j = 0; j < k; j++) {
                int best = -1;
                for (int e = 0; e < experts; e++) if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
                taken[best] = true;
                chosen[t * k + j] = best;
                weight[t * k + j] = p[best];
                total += p[best];
            }
            if (c.variant().renormalise()) for (int j = 0; j < k; j++) weight[t * k + j] /= total;
        }
    }
}
