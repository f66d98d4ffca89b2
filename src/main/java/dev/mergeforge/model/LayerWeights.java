package dev.mergeforge.model;

import dev.mergeforge.arch.Role;

/**
 * One Llama-layout decoder layer's weights in float32, row-major as stored ([out, in] for
 * projections), for the device forward pass (which covers Llama, Mistral and Qwen2). Biases are
 * null when the checkpoint has none. The CPU pass reads {@link LayerTensors} directly.
 */
public record LayerWeights(int index, float[] inputNorm, float[] q, float[] qBias, float[] k, float[] kBias,
                           float[] v, float[] vBias, float[] o, float[] oBias, float[] postNorm,
                           float[] gate, float[] gateBias, float[] up, float[] upBias, float[] down, float[] downBias) {

    /** The Llama-layout view of a layer of a Llama, Mistral or Qwen2 model. */
    static LayerWeights of(LayerTensors t) {
        return new LayerWeights(t.index, t.w(Role.ATTN_NORM), t.w(Role.Q), t.b(Role.Q), t.w(Role.K), t.b(Role.K), t.w(Role.V), t.b(Role.V),
                t.w(Role.O), t.b(Role.O), t.w(Role.MLP_NORM), t.w(Role.GATE), t.b(Role.GATE), t.w(Role.UP), t.b(Role.UP), t.w(Role.DOWN),
                t.b(Role.DOWN));
    }
}
