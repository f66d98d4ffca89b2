package dev.mergeforge.config;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The keys a config may use, as data. mergekit ignores unknown keys silently; we refuse them with
 * the list of valid names. Keys mergekit defines but we do not act on yet are accepted and listed
 * by {@link #notActedOn} so the CLI can say so.
 */
public final class ConfigKeys {
    private ConfigKeys() {}

    /** Ours: where gradients are evaluated on post-layer weights (0 as mergekit 0.1.2+, 1 as mergekit 0.1.0-0.1.1). */
    public static final String POST_WEIGHTS_T = "post_weights_t";

    /** Top-level keys we act on (the last three are ours, not mergekit's). */
    public static final List<String> TOP_LEVEL = List.of("merge_method", "base_model", "models", "slices", "parameters",
            "dtype", "out_dtype", "tokenizer_source", "tokenizer", "chat_template", "aim", "calibration", POST_WEIGHTS_T);

    /** mergekit keys we know but refuse, with why. */
    public static final Map<String, String> REFUSED = Map.of(
            "modules", "mergekit's multi-module syntax (modules:) is not supported yet; use models: or slices:");

    public static final List<String> MODEL = List.of("model", "parameters", "calibration");
    public static final List<String> SLICE = List.of("sources", "base_model", "parameters", "residual_weight");
    public static final List<String> SOURCE = List.of("model", "layer_range", "parameters");
    public static final List<String> TOKENIZER = List.of("source", "tokens", "pad_to_multiple_of");
    public static final List<String> AIM = List.of("omega", "stats", "calibration", "scaling", "power", "include", "exclude");
    public static final List<String> CALIBRATION = List.of("data", "stats", "samples", "seq_len");

    /**
     * Key paths present in {@code raw} that are valid mergekit but change nothing in our output yet:
     * {@code slices[i].residual_weight} (which mergekit itself never reads). The tokenizer keys and
     * {@code chat_template} are acted on (docs/config.md, "Tokenizers and vocabularies").
     */
    public static List<String> notActedOn(Map<String, Object> raw) {
        List<String> out = new ArrayList<>();
        if (raw.get("slices") instanceof List<?> slices) {
            for (int i = 0; i < slices.size(); i++) {
                if (slices.get(i) instanceof Map<?, ?> s && s.containsKey("residual_weight")) out.add("slices[" + i + "].residual_weight");
            }
        }
        return out;
    }
}
