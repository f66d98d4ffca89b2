package dev.mergeforge.arch;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * What the planner, slices, AIM and Gram sharing need to know about a checkpoint's tensor names:
 * a family's descriptor ({@link Architecture}) or, for a family we have none for,
 * {@link UnknownArchitecture}'s conventions (which still lets every per-tensor method merge it).
 */
public sealed interface TensorRoles permits Architecture, UnknownArchitecture {
    /** The family's name for messages ("llama", or the unknown class name). */
    String family();

    /** The decoder layer index in a tensor name, or −1 for a tensor outside the layers. */
    int layerOf(String tensorName);

    /** The same layer tensor's name in layer {@code layer}. */
    String withLayer(String tensorName, int layer);

    /** True for tensors before the layers (mergekit's pre weights: embeddings), false for layer and post tensors. */
    boolean isPre(String tensorName);

    /** True for input tables (token or position embeddings): AIM never relaxes them. */
    boolean isEmbedding(String tensorName);

    /** True for the output head (lm_head, embed_out). */
    boolean isHead(String tensorName);

    /**
     * True for tensors with one row per token — the token embedding and the head (not position
     * tables): the rows a merged vocabulary permutes (docs/config.md, "Tokenizers and vocabularies").
     */
    boolean isVocab(String tensorName);

    /** True when this 2-D weight is stored (in, out) (GPT-2's Conv1D) rather than nn.Linear's (out, in). */
    boolean storedInOut(String tensorName);

    /** Whether the head is tied to the token embeddings: config.json's tie_word_embeddings, else the family's default. */
    boolean tiedHead(JsonNode config);

    /** Decoder layers as config.json names them, or −1 when it does not. */
    default int layerCount(JsonNode config) {
        for (String k : layerCountKeys()) {
            JsonNode v = config == null ? null : config.get(k);
            if (v != null && v.canConvertToInt()) return v.asInt();
        }
        return -1;
    }

    /** The config.json keys that may hold the layer count, in the order they are tried. */
    java.util.List<String> layerCountKeys();
}
