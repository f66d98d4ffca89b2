package dev.mergeforge.arch;

/**
 * What a stored weight is for. The planner, AIM and calibration ask a descriptor for roles
 * instead of guessing from names; the forward pass fetches a layer's weights by role.
 */
public enum Role {
    /** Token embedding table [vocab, hidden] (a pre weight; never relaxed by AIM). */
    EMBEDDING,
    /** Learned position table [positions, hidden] (GPT-2's wpe). */
    POSITION_EMBEDDING,
    /** The output projection to the vocabulary (lm_head, embed_out). */
    HEAD,
    /** The norm after the last layer. */
    FINAL_NORM,
    /** Norm of the attention's input (input_layernorm, ln_1). */
    ATTN_NORM,
    /** Norm of the attention's output before the residual add (Gemma 2/3, OLMo 2). */
    ATTN_OUT_NORM,
    /** Norm of the MLP's input (Llama's post_attention_layernorm, Gemma's pre_feedforward_layernorm, ln_2). */
    MLP_NORM,
    /** Norm of the MLP's output before the residual add (post_feedforward_layernorm). */
    MLP_OUT_NORM,
    /** Norms of queries and keys (per head or over the whole projection, see {@link Components.QkNorm}). */
    Q_NORM, K_NORM,
    /** Attention projections; QKV is a fused q/k/v projection. */
    Q, K, V, QKV, O,
    /** Dense MLP projections; GATE_UP is a fused [gate; up] projection; UP alone is a plain MLP's first linear. */
    GATE, UP, GATE_UP, DOWN,
    /** A mixture-of-experts router [experts, hidden]. */
    ROUTER,
    /** One expert's projections (names carry the expert index). */
    EXPERT_GATE, EXPERT_UP, EXPERT_DOWN,
    /** The shared expert every token passes through (Qwen2-MoE), a gated MLP of its own width. */
    SHARED_GATE, SHARED_UP, SHARED_DOWN,
    /** The shared expert's one-row gate [1, hidden]: its output is scaled by sigmoid(gate·x). */
    SHARED_EXPERT_GATE;

    /** True for the norms (1-D weights whose input the AIM statistic also covers). */
    public boolean isNorm() {
        return switch (this) {
            case FINAL_NORM, ATTN_NORM, ATTN_OUT_NORM, MLP_NORM, MLP_OUT_NORM, Q_NORM, K_NORM -> true;
            case EMBEDDING, POSITION_EMBEDDING, HEAD, Q, K, V, QKV, O, GATE, UP, GATE_UP, DOWN, ROUTER, EXPERT_GATE, EXPERT_UP,
                 EXPERT_DOWN, SHARED_GATE, SHARED_UP, SHARED_DOWN, SHARED_EXPERT_GATE -> false;
        };
    }

    /** True for the input tables (token and position embeddings). */
    public boolean isEmbedding() { return this == EMBEDDING || this == POSITION_EMBEDDING; }

    /** True for per-expert weights. */
    public boolean isExpert() { return this == EXPERT_GATE || this == EXPERT_UP || this == EXPERT_DOWN; }
}
