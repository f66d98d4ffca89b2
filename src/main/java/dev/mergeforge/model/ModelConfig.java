package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.errors.ConfigException;

import java.util.Set;

/**
 * The shape of a Llama-family decoder as config.json describes it (Llama 2/3, Mistral, Qwen2).
 * Biases are not part of the config: a q/k/v/o or MLP bias is used when the checkpoint has it
 * (Qwen2 always has q/k/v biases; Llama's {@code attention_bias}/{@code mlp_bias} say the same).
 *
 * @param slidingWindow Mistral's attention window in tokens, or 0 for full causal attention
 * @param bosTokenId    the beginning-of-sequence id, or -1 when the config names none
 * @param eosTokenId    the first end-of-sequence id, or -1 when the config names none
 */
public record ModelConfig(String modelType, int hiddenSize, int intermediateSize, int layers, int heads,
                          int kvHeads, int headDim, int vocabSize, double rmsNormEps, double ropeTheta,
                          RopeScaling ropeScaling, boolean tieWordEmbeddings, int slidingWindow,
                          int bosTokenId, int eosTokenId) {
    /** model_type values whose decoder this class describes exactly. */
    public static final Set<String> SUPPORTED = Set.of("llama", "mistral", "qwen2");

    public ModelConfig {
        if (!SUPPORTED.contains(modelType)) {
            throw new IllegalArgumentException("model_type '" + modelType + "' is not supported (supported: " + SUPPORTED + ")");
        }
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", layers);
        positive("num_attention_heads", heads);
        positive("num_key_value_heads", kvHeads);
        positive("head_dim", headDim);
        positive("vocab_size", vocabSize);
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        if (headDim % 2 != 0) throw new IllegalArgumentException("head_dim " + headDim + " must be even for rotary embeddings");
        if (!(rmsNormEps > 0)) throw new IllegalArgumentException("rms_norm_eps must be > 0, got " + rmsNormEps);
        if (!(ropeTheta > 0)) throw new IllegalArgumentException("rope_theta must be > 0, got " + ropeTheta);
        if (slidingWindow < 0) throw new IllegalArgumentException("sliding_window must be >= 0, got " + slidingWindow);
        if (ropeScaling == null) throw new IllegalArgumentException("ropeScaling must not be null (use RopeScaling.NONE)");
    }

    private static void positive(String key, int v) {
        if (v <= 0) throw new IllegalArgumentException(key + " must be > 0, got " + v);
    }

    public int qDim() { return heads * headDim; }

    public int kvDim() { return kvHeads * headDim; }

    /** Parses config.json; {@code where} names the file in every error. */
    public static ModelConfig fromJson(JsonNode c, String where) {
        if (c == null || !c.isObject()) throw new ConfigException(where + ": config.json is not a JSON object");
        String type = text(c, "model_type", where);
        String act = c.has("hidden_act") ? c.get("hidden_act").asText() : "silu";
        if (!act.equals("silu")) throw new ConfigException(where + ": hidden_act '" + act + "' is not supported (only silu)");
        if (c.path("use_sliding_window").asBoolean(false) && type.equals("qwen2")) {
            throw new ConfigException(where + ": Qwen2 use_sliding_window=true is not supported; set it to false if sequences fit the window");
        }
        int hidden = integer(c, "hidden_size", where);
        int heads = integer(c, "num_attention_heads", where);
        int kv = c.hasNonNull("num_key_value_heads") ? integer(c, "num_key_value_heads", where) : heads;
        int headDim = c.hasNonNull("head_dim") ? integer(c, "head_dim", where) : hidden / heads;
        // transformers 5 keeps theta and scaling in rope_parameters; 4.x uses rope_theta + rope_scaling
        JsonNode rp = c.get("rope_parameters");
        double theta;
        RopeScaling scaling;
        if (rp != null && rp.isObject()) {
            theta = rp.path("rope_theta").asDouble(c.path("rope_theta").asDouble(10000.0));
            scaling = RopeScaling.parse(rp, where);
        } else {
            theta = c.path("rope_theta").asDouble(10000.0);
            scaling = RopeScaling.parse(c.get("rope_scaling"), where);
        }
        int window = type.equals("mistral") && c.hasNonNull("sliding_window") ? integer(c, "sliding_window", where) : 0;
        try {
            return new ModelConfig(type, hidden, integer(c, "intermediate_size", where), integer(c, "num_hidden_layers", where),
                    heads, kv, headDim, integer(c, "vocab_size", where), c.path("rms_norm_eps").asDouble(1e-6), theta, scaling,
                    c.path("tie_word_embeddings").asBoolean(false), window, firstId(c.get("bos_token_id")),
                    firstId(c.get("eos_token_id")));
        } catch (IllegalArgumentException e) {
            throw new ConfigException(where + ": " + e.getMessage());
        }
    }

    private static int firstId(JsonNode n) {
        if (n == null || n.isNull()) return -1;
        if (n.isArray()) return n.isEmpty() ? -1 : n.get(0).asInt();
        return n.asInt();
    }

    private static String text(JsonNode c, String key, String where) {
        JsonNode v = c.get(key);
        if (v == null || !v.isTextual()) throw new ConfigException(where + ": missing string key '" + key + "'");
        return v.asText();
    }

    private static int integer(JsonNode c, String key, String where) {
        JsonNode v = c.get(key);
        if (v == null || !v.canConvertToInt()) throw new ConfigException(where + ": missing integer key '" + key + "'");
        return v.asInt();
    }
}
