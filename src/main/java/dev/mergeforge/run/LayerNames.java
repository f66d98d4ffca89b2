package dev.mergeforge.run;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Decoder-layer numbering in Hugging Face tensor names: {@code model.layers.N.*} (Llama, Mistral,
 * Qwen2, Gemma), {@code transformer.h.N.*} (GPT-2), {@code *.blocks.N.*}.
 */
public final class LayerNames {
    private static final Pattern LAYER = Pattern.compile("^(.*?(?:^|\\.)(?:layers|layer|h|blocks|block)\\.)(\\d+)(\\..*)$");

    private LayerNames() {}

    /** The layer index in the name, or -1 for tensors outside the decoder layers. */
    public static int layerOf(String name) {
        return dev.mergeforge.config.ConfigReader.layerIndexOf(name);
    }

    /** The same name with its layer index replaced. */
    public static String withLayer(String name, int layer) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) throw new IllegalArgumentException(name + " is not a layer tensor");
        return m.group(1) + layer + m.group(3);
    }

    /** True for tensors before the layers (embeddings): mergekit's "pre weights", t = 0. */
    public static boolean isPre(String name) {
        return layerOf(name) < 0 && dev.mergeforge.config.ConfigReader.isPreWeight(name);
    }

    /** True for embedding tables (input or position): never relaxed by AIM. */
    public static boolean isEmbedding(String name) {
        return name.contains("embed_tokens") || name.contains("embed_positions") || name.contains("wte.")
                || name.contains("wpe.") || name.endsWith("embeddings.weight");
    }
}
