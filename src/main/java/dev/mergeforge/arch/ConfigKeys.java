package dev.mergeforge.arch;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * Where a family's config.json keeps its sizes: the first key of each list that is present wins.
 * An empty kvHeads list means the family has no grouped-query attention (kv heads = heads).
 *
 * @param windows which layers a {@code sliding_window} applies to when config.json has no
 *                {@code layer_types} list
 */
public record ConfigKeys(List<String> hidden, List<String> layers, List<String> heads, List<String> kvHeads,
                         List<String> intermediate, List<String> eps, List<String> activation, Windows windows) {
    /**
     * Layers with the window when layer_types is absent (transformers' config classes derive it the
     * same way): all; the even ones (Gemma 2); all but every Nth (Gemma 3's sliding_window_pattern,
     * default 6); or, for Qwen2/Qwen3, none unless use_sliding_window, then those from
     * max_window_layers (default 28) on. The forward pass and slices' config.json rewrite both read it.
     */
    public enum Windows {
        ALL, EVEN, PATTERN, FROM_MAX_WINDOW_LAYERS;

        /** Per layer, whether it slides when config.json {@code c} has no layer_types. */
        public boolean[] implicit(JsonNode c, int layers) {
            boolean[] s = new boolean[Math.max(0, layers)];
            int pattern = c.path("sliding_window_pattern").asInt(c.path("_sliding_window_pattern").asInt(6));
            boolean qwenSlides = c.path("use_sliding_window").asBoolean(false) && c.hasNonNull("sliding_window");
            int from = c.path("max_window_layers").asInt(28);
            for (int i = 0; i < s.length; i++) {
                s[i] = switch (this) {
                    case ALL -> true;
                    case EVEN -> i % 2 == 0;
                    case PATTERN -> pattern > 0 && (i + 1) % pattern != 0;
                    case FROM_MAX_WINDOW_LAYERS -> qwenSlides && i >= from;
                };
            }
            return s;
        }

        /**
         * True when which layers slide depends on the layer's index under config.json {@code c}, so a
         * config whose stack is rebuilt (slices) must carry the pattern as an explicit layer_types.
         */
        public boolean dependsOnLayer(JsonNode c) {
            return switch (this) {
                case ALL -> false;
                case EVEN, PATTERN -> true;
                case FROM_MAX_WINDOW_LAYERS -> c.path("use_sliding_window").asBoolean(false) && c.hasNonNull("sliding_window");
            };
        }
    }

    public ConfigKeys {
        if (windows == null) throw new IllegalArgumentException("windows must be given");
        hidden = List.copyOf(hidden);
        layers = List.copyOf(layers);
        heads = List.copyOf(heads);
        kvHeads = List.copyOf(kvHeads);
        intermediate = List.copyOf(intermediate);
        eps = List.copyOf(eps);
        activation = List.copyOf(activation);
    }

    /** The names transformers' Llama-like configs use. */
    public static final ConfigKeys HF = new ConfigKeys(List.of("hidden_size"), List.of("num_hidden_layers"),
            List.of("num_attention_heads"), List.of("num_key_value_heads"), List.of("intermediate_size"), List.of("rms_norm_eps"),
            List.of("hidden_act"), Windows.ALL);

    public ConfigKeys withEps(String... keys) {
        return new ConfigKeys(hidden, layers, heads, kvHeads, intermediate, List.of(keys), activation, windows);
    }

    public ConfigKeys withActivation(String... keys) {
        return new ConfigKeys(hidden, layers, heads, kvHeads, intermediate, eps, List.of(keys), windows);
    }

    public ConfigKeys withoutKvHeads() {
        return new ConfigKeys(hidden, layers, heads, List.of(), intermediate, eps, activation, windows);
    }

    public ConfigKeys withWindows(Windows w) {
        return new ConfigKeys(hidden, layers, heads, kvHeads, intermediate, eps, activation, w);
    }
}
