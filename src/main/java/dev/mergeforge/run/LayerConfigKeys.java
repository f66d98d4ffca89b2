package dev.mergeforge.run;

import java.util.List;
import java.util.Set;

/**
 * What config.json says about the decoder stack beyond any one family's descriptor (the layer count
 * key, per-layer lists and implicit sliding patterns live in the descriptors, dev.mergeforge.arch):
 * nested language-model configs, lists of layer indices, lists that never run per layer, and
 * DeepSeek's dense/MoE numbers, which families without a descriptor use. {@link OutputConfig} is its
 * one reader.
 */
final class LayerConfigKeys {
    /** Nested configs that carry their own decoder stack (multimodal models: the language model). */
    static final List<String> NESTED = List.of("text_config");

    /** Lists of layer indices (not one entry per layer): Qwen2-MoE / Qwen3-MoE's dense-MLP layers. */
    static final List<String> INDEX_LISTS = List.of("mlp_only_layers");

    /** Lists that never run per layer even when their length happens to equal the layer count. */
    static final Set<String> NOT_PER_LAYER = Set.of("architectures", "bos_token_id", "eos_token_id", "pad_token_id",
            "sep_token_id", "decoder_start_token_id", "suppress_tokens", "begin_suppress_tokens", "bad_words_ids");

    /** DeepSeek-V2/V3: layers below {@code first_k_dense_replace} are dense; MoE after, every {@code moe_layer_freq}-th. */
    static final String FIRST_DENSE = "first_k_dense_replace";
    static final String MOE_FREQ = "moe_layer_freq";

    static final String SLIDING = "sliding_attention";
    static final String FULL = "full_attention";

    private LayerConfigKeys() {}
}
