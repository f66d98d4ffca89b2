package dev.mergeforge.arch;

/**
 * The forward-pass pieces a family is built from. The CPU decoder composes these; a family
 * that reuses existing pieces needs no code, only its descriptor.
 */
public record Components(Norm norm, Attention attention, QkNorm qkNorm, Mlp mlp, Positions positions, Residual residual,
                         boolean scaleEmbedding, Routing routing) {
    public Components {
        if (norm == null || attention == null || qkNorm == null || mlp == null || positions == null || residual == null || routing == null) {
            throw new IllegalArgumentException("every component must be given");
        }
        if ((mlp == Mlp.MOE) != (routing != Routing.NONE)) throw new IllegalArgumentException("routing is for MoE MLPs only");
    }

    /** How a norm computes. */
    public enum Norm {
        /** x / sqrt(mean(x²) + eps) ⊙ w (Llama). */
        RMS,
        /** x / sqrt(mean(x²) + eps) ⊙ (1 + w) (Gemma). */
        RMS_ONE_PLUS,
        /** (x − mean) / sqrt(var + eps) ⊙ w + b (GPT-2, GPT-NeoX). */
        LAYER_NORM
    }

    /** How queries, keys and values are stored. */
    public enum Attention {
        /** q_proj, k_proj, v_proj. */
        SEPARATE,
        /** One projection whose outputs are [q; k; v] (Phi-3, GPT-2). */
        FUSED_CONCAT,
        /** One projection whose outputs are, per head, [q_h; k_h; v_h] (GPT-NeoX). */
        FUSED_PER_HEAD
    }

    /** Normalisation of queries and keys before rotation. */
    public enum QkNorm { NONE, PER_HEAD, WHOLE }

    /** The feed-forward block. */
    public enum Mlp {
        /** down(act(gate(x)) ⊙ up(x)). */
        GATED,
        /** The same from one fused [gate; up] projection (Phi-3). */
        FUSED_GATED,
        /** down(act(up(x))) with biases (GPT-2, GPT-NeoX). */
        PLAIN,
        /** A routed mixture of gated experts. */
        MOE
    }

    /** How positions enter. */
    public enum Positions { ROPE, LEARNED }

    /** Sequential: h += attn; h += mlp. Parallel: h += attn(h) + mlp(h) (GPT-NeoX's use_parallel_residual). */
    public enum Residual { SEQUENTIAL, PARALLEL }

    /** Top-k expert weights: renormalised to sum 1 always, never, or as config.json's norm_topk_prob says. */
    public enum Routing { NONE, RENORMALISE, CONFIG_NORM_TOPK_PROB }
}
