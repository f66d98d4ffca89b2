package dev.mergeforge.arch;

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
    /** Layers with the window when layer_types is absent: all, the even ones (Gemma 2), all but every Nth (Gemma 3's sliding_window_pattern). */
    public enum Windows { ALL, EVEN, PATTERN }

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
