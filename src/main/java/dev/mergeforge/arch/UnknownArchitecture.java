package dev.mergeforge.arch;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A family with no descriptor: the Hugging Face naming conventions most decoders share
 * ({@code *.layers.N.*}, {@code *.h.N.*}, {@code *.layer.N.*}, {@code *.blocks.N.*}; "embed",
 * "wte", "wpe" before the layers). Enough for per-tensor merges; the model-running commands
 * refuse such a family ({@link Architectures#requireRunnable}).
 */
public record UnknownArchitecture(String family, String modelType) implements TensorRoles {
    private static final Pattern LAYER = Pattern.compile("^(.*?(?:^|\\.)(?:layers|layer|h|blocks|block)\\.)(\\d+)(\\..*)$");

    @Override
    public int layerOf(String name) {
        Matcher m = LAYER.matcher(name);
        return m.matches() ? Integer.parseInt(m.group(2)) : -1;
    }

    @Override
    public String withLayer(String name, int layer) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) throw new IllegalArgumentException(name + " is not a layer tensor");
        return m.group(1) + layer + m.group(3);
    }

    @Override
    public boolean isPre(String name) {
        if (layerOf(name) >= 0) return false;
        String n = name.toLowerCase(Locale.ROOT);
        // GPT-NeoX-like heads called embed_out are post weights
        return (n.contains("embed") && !n.contains("embed_out")) || n.contains("wte.") || n.contains("wpe.");
    }

    @Override
    public boolean isEmbedding(String name) {
        return name.contains("embed_tokens") || name.contains("embed_positions") || name.contains("wte.")
                || name.contains("wpe.") || name.endsWith("embeddings.weight");
    }

    @Override
    public boolean isHead(String name) { return name.startsWith("lm_head") || name.startsWith("embed_out"); }

    @Override
    public boolean isVocab(String name) {
        return name.contains("embed_tokens.") || name.contains("wte.") || name.contains("word_embeddings.")
                || name.startsWith("lm_head.") || name.contains(".lm_head.") || name.contains("embed_out.");
    }

    @Override
    public boolean storedInOut(String name) { return false; }

    @Override
    public boolean tiedHead(JsonNode config) {
        JsonNode t = config == null ? null : config.get("tie_word_embeddings");
        if (t != null && !t.isNull()) return t.asBoolean();
        // Gemma variants without a descriptor tie their head, as transformers' defaults do
        return modelType != null && modelType.startsWith("gemma");
    }

    @Override
    public List<String> layerCountKeys() { return List.of("num_hidden_layers", "n_layer", "num_layers", "n_layers"); }
}
