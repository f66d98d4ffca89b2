package dev.mergeforge.run;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * What config.json says about the decoder stack, as data: which key holds the layer count, which
 * lists run per layer, and how the families that leave their per-layer attention pattern implicit
 * derive it (transformers' config classes). Kept in one place so it can move into the per-family
 * architecture descriptors; {@link OutputConfig} is its one reader.
 */
final class LayerConfigKeys {
    /** Keys holding the number of decoder layers (Llama-style, GPT-2, others). */
    static final List<String> COUNT = List.of("num_hidden_layers", "n_layer", "num_layers", "n_layers");

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

    /** The count key present in {@code c}, or null. */
    static String countKey(JsonNode c) {
        for (String k : COUNT) if (c.has(k) && c.get(k).canConvertToInt()) return k;
        return null;
    }

    /**
     * The {@code layer_types} transformers derives when the config has none, or null when every
     * layer is alike: Gemma 2 alternates sliding/full starting with sliding; Gemma 3 makes every
     * {@code sliding_window_pattern}-th layer (default 6) full; Qwen2/Qwen3 with
     * {@code use_sliding_window} slide from layer {@code max_window_layers} on.
     */
    static List<String> implicitLayerTypes(JsonNode c, int layers) {
        String type = c.path("model_type").asText("");
        List<String> out = new ArrayList<>();
        switch (type) {
            case "gemma2" -> { for (int i = 0; i < layers; i++) out.add((i + 1) % 2 != 0 ? SLIDING : FULL); }
            case "gemma3", "gemma3_text" -> {
                int p = c.path("sliding_window_pattern").asInt(6);
                for (int i = 0; i < layers; i++) out.add(p > 0 && (i + 1) % p != 0 ? SLIDING : FULL);
            }
            case "qwen2", "qwen3" -> {
                if (!c.path("use_sliding_window").asBoolean(false) || c.path("sliding_window").isNull()) return null;
                int from = c.path("max_window_layers").asInt(layers);
                for (int i = 0; i < layers; i++) out.add(i >= from ? SLIDING : FULL);
            }
            default -> { return null; }
        }
        return out;
    }
}
