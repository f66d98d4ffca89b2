package dev.mergeforge.model;

/**
 * Sees the input of every module that owns a weight (except embeddings) during a forward pass:
 * {@code x[offset + t·width + j]} for t &lt; tokens is the input row of token t. Keyed by the
 * weight's name ({@code model.layers.0.mlp.down_proj.weight}, {@code model.norm.weight},
 * {@code lm_head.weight}). The array is scratch: read it during the call, never keep it.
 */
@FunctionalInterface
public interface ActivationObserver {
    ActivationObserver NONE = (name, x, offset, tokens, width) -> { };

    void accept(String weightName, float[] x, int offset, int tokens, int width);
}
