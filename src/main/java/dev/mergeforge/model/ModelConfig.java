package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.arch.Architecture;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.Components;
import dev.mergeforge.arch.ConfigKeys;
import dev.mergeforge.errors.ConfigException;

import java.util.Arrays;
import java.util.List;

/**
 * The shape of a decoder as config.json describes it, read through its family's descriptor
 * ({@link Architecture}: which keys hold the sizes, which components run). Biases are not part
 * of the config: a projection's bias is used when the checkpoint has it.
 *
 * @param slidingWindow attention window in tokens for the layers {@link Variant#sliding} marks, or 0
 * @param rmsNormEps    the norms' epsilon (RMSNorm or LayerNorm, whichever the family uses)
 * @param bosTokenId    the beginning-of-sequence id, or -1 when the config names none
 * @param eosTokenId    the first end-of-sequence id, or -1 when the config names none
 */
public record ModelConfig(String modelType, int hiddenSize, int intermediateSize, int layers, int heads,
                          int kvHeads, int headDim, int vocabSize, double rmsNormEps, double ropeTheta,
                          RopeScaling ropeScaling, boolean tieWordEmbeddings, int slidingWindow,
                          int bosTokenId, int eosTokenId, Architecture arch, Variant variant) {

    /**
     * What differs between families beyond the sizes.
     *
     * @param attnScale      the factor on q·k (1/√head_dim, or query_pre_attn_scalar^−½)
     * @param attnSoftcap    c in scores = c·tanh(scores/c), 0 for none (likewise finalSoftcap on logits)
     * @param sliding        per layer: whether the sliding window applies
     * @param localRopeTheta rope base of sliding layers (Gemma 3), or the global base
     * @param rotaryDims     the leading dims of each head that rotate (partial rotary), even
     * @param experts        experts per MoE layer (0 for dense), topK of them per token
     * @param renormalise    whether the top-k routing weights are rescaled to sum 1
     * @param sharedIntermediate the shared expert's width (Qwen2-MoE), 0 when the layers have none
     * @param maxPositions   learned position table rows (0 when positions rotate)
     */
    public record Variant(Activation activation, double attnScale, double attnSoftcap, double finalSoftcap, boolean[] sliding,
                          double localRopeTheta, int rotaryDims, boolean parallelResidual, int experts, int topK,
                          int expertIntermediate, boolean renormalise, int maxPositions, int sharedIntermediate) {
        public Variant {
            sliding = sliding.clone();
            if (rotaryDims < 0 || rotaryDims % 2 != 0) throw new IllegalArgumentException("rotary dims must be even and >= 0, got " + rotaryDims);
            if (experts < 0 || topK < 0 || topK > experts) throw new IllegalArgumentException("num_experts_per_tok " + topK
                    + " must be between 1 and the " + experts + " experts");
        }

        @Override public boolean[] sliding() { return sliding.clone(); }

        boolean slidingAt(int layer) { return sliding[layer]; }

        @Override public boolean equals(Object o) {
            return o instanceof Variant v && v.toString().equals(toString());
        }

        @Override public int hashCode() { return toString().hashCode(); }

        @Override public String toString() {
            return "Variant[" + activation + ", " + attnScale + ", " + attnSoftcap + ", " + finalSoftcap + ", " + Arrays.toString(sliding)
                    + ", " + localRopeTheta + ", " + rotaryDims + ", " + parallelResidual + ", " + experts + ", " + topK + ", "
                    + expertIntermediate + ", " + renormalise + ", " + maxPositions + ", " + sharedIntermediate + "]";
        }
    }

    /** A Llama / Mistral / Qwen2 shape (the families the CUDA pass covers), for tests and device code. */
    public ModelConfig(String modelType, int hiddenSize, int intermediateSize, int layers, int heads, int kvHeads, int headDim,
                       int vocabSize, double rmsNormEps, double ropeTheta, RopeScaling ropeScaling, boolean tieWordEmbeddings,
                       int slidingWindow, int bosTokenId, int eosTokenId) {
        this(modelType, hiddenSize, intermediateSize, layers, heads, kvHeads, headDim, vocabSize, rmsNormEps, ropeTheta, ropeScaling,
                tieWordEmbeddings, slidingWindow, bosTokenId, eosTokenId, llamaFamily(modelType),
                new Variant(Activation.SILU, 1.0 / Math.sqrt(headDim), 0, 0, filled(Math.max(0, layers), slidingWindow > 0), ropeTheta,
                        headDim, false, 0, 0, 0, false, 0, 0));
    }

    private static Architecture llamaFamily(String modelType) {
        for (Architecture a : List.of(Architectures.LLAMA, Architectures.MISTRAL, Architectures.QWEN2)) {
            if (a.modelTypes().contains(modelType)) return a;
        }
        throw new IllegalArgumentException("model_type '" + modelType + "' is not supported (supported: llama, mistral, qwen2)");
    }

    private static boolean[] filled(int n, boolean v) {
        boolean[] b = new boolean[n];
        Arrays.fill(b, v);
        return b;
    }

    public ModelConfig {
        if (arch == null || !arch.runnable()) throw new IllegalArgumentException("model_type '" + modelType + "' has no forward pass here");
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
        if (variant.sliding.length != layers) throw new IllegalArgumentException("layer_types has " + variant.sliding.length
                + " entries for " + layers + " layers");
        if (variant.rotaryDims > headDim) throw new IllegalArgumentException("rotary dims " + variant.rotaryDims + " exceed head_dim " + headDim);
        if ((arch.forward().mlp() == Components.Mlp.MOE) != (variant.experts > 0)) {
            throw new IllegalArgumentException("num_local_experts must be > 0 exactly for mixture-of-experts families");
        }
    }

    private static void positive(String key, int v) {
        if (v <= 0) throw new IllegalArgumentException(key + " must be > 0, got " + v);
    }

    public int qDim() { return heads * headDim; }

    public int kvDim() { return kvHeads * headDim; }

    public Components parts() { return arch.forward(); }

    /** in_features of the linear with this role. */
    public int inputWidth(dev.mergeforge.arch.Role r) {
        return switch (r) {
            case Q, K, V, QKV, GATE, UP, GATE_UP, ROUTER, EXPERT_GATE, EXPERT_UP, SHARED_GATE, SHARED_UP, SHARED_EXPERT_GATE, HEAD -> hiddenSize;
            case O -> qDim();
            case DOWN -> intermediateSize;
            case EXPERT_DOWN -> variant.expertIntermediate();
            case SHARED_DOWN -> variant.sharedIntermediate();
            case EMBEDDING, POSITION_EMBEDDING, FINAL_NORM, ATTN_NORM, ATTN_OUT_NORM, MLP_NORM, MLP_OUT_NORM, Q_NORM, K_NORM ->
                    throw new IllegalArgumentException(r + " is not a linear");
        };
    }

    /** Parses config.json through its family's descriptor; {@code where} names the file in every error. */
    public static ModelConfig fromJson(JsonNode c, String where) {
        if (c == null || !c.isObject()) throw new ConfigException(where + ": config.json is not a JSON object");
        Architecture arch = Architectures.requireRunnable(c, where);
        ConfigKeys k = arch.keys();
        String type = c.path("model_type").asText(arch.family());
        String actKey = first(c, k.activation());
        Activation act = Activation.parse(actKey == null ? "silu" : c.get(actKey).asText(), where + ": " + (actKey == null ? k.activation().getFirst() : actKey));
        int hidden = firstInt(c, k.hidden(), where);
        int layers = firstInt(c, k.layers(), where);
        int heads = firstInt(c, k.heads(), where);
        int kv = k.kvHeads().isEmpty() || !has(c, k.kvHeads()) ? heads : firstInt(c, k.kvHeads(), where);
        int headDim = c.hasNonNull("head_dim") ? integer(c, "head_dim", where) : hidden / Math.max(1, heads);
        int inter = has(c, k.intermediate()) ? firstInt(c, k.intermediate(), where) : 4 * hidden;
        double eps = has(c, k.eps()) ? c.get(first(c, k.eps())).asDouble() : 1e-6;
        RopeSpec rope = RopeSpec.parse(c, where);
        boolean[] sliding = slidingLayers(c, arch, layers, where);
        int window = 0;
        for (boolean b : sliding) if (b) window = integer(c, "sliding_window", where);
        double scale = c.hasNonNull("query_pre_attn_scalar") ? 1.0 / Math.sqrt(c.get("query_pre_attn_scalar").asDouble())
                : c.path("scale_attn_weights").asBoolean(true) ? 1.0 / Math.sqrt(headDim) : 1.0;
        if (c.path("scale_attn_by_inverse_layer_idx").asBoolean(false) || c.path("reorder_and_upcast_attn").asBoolean(false)) {
            throw new ConfigException(where + ": scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported; set them to false");
        }
        boolean moe = arch.forward().mlp() == Components.Mlp.MOE;
        int experts = moe ? (c.hasNonNull("num_local_experts") ? integer(c, "num_local_experts", where) : integer(c, "num_experts", where)) : 0;
        int topK = moe ? integer(c, "num_experts_per_tok", where) : 0;
        int expertInter = moe ? (c.hasNonNull("moe_intermediate_size") ? integer(c, "moe_intermediate_size", where) : inter) : 0;
        if (moe && (c.path("mlp_only_layers").size() > 0 || c.path("decoder_sparse_step").asInt(1) != 1)) {
            throw new ConfigException(where + ": dense layers between MoE layers (mlp_only_layers, decoder_sparse_step) are not supported; "
                    + "run a model whose every layer is MoE");
        }
        boolean shared = arch.layerSpec(dev.mergeforge.arch.Role.SHARED_GATE) != null;
        if (!shared && c.path("shared_expert_intermediate_size").asInt(0) > 0) {
            throw new ConfigException(where + ": shared_expert_intermediate_size: " + arch.family() + " has no shared expert here; "
                    + "a model with one should be a qwen2_moe (Qwen2MoeForCausalLM)");
        }
        int sharedInter = shared ? integer(c, "shared_expert_intermediate_size", where) : 0;
        boolean renorm = switch (arch.forward().routing()) {
            case NONE -> false;
            case RENORMALISE -> true;
            case CONFIG_NORM_TOPK_PROB -> c.path("norm_topk_prob").asBoolean(false);
        };
        boolean parallel = arch.forward().residual() == Components.Residual.PARALLEL && c.path("use_parallel_residual").asBoolean(true);
        int maxPos = arch.forward().positions() == Components.Positions.LEARNED ? firstInt(c, List.of("n_positions", "max_position_embeddings"), where) : 0;
        try {
            int rot = arch.forward().positions() == Components.Positions.ROPE ? (int) (headDim * rope.partial()) : 0;
            Variant v = new Variant(act, scale, c.path("attn_logit_softcapping").asDouble(0), c.path("final_logit_softcapping").asDouble(0),
                    sliding, rope.local(), rot, parallel, experts, topK, expertInter, renorm, maxPos, sharedInter);
            return new ModelConfig(type, hidden, inter, layers, heads, kv, headDim, integer(c, "vocab_size", where), eps, rope.theta(), rope.scaling(),
                    arch.tiedHead(c), window, firstId(c.get("bos_token_id")), firstId(c.get("eos_token_id")), arch, v);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(where + ": " + e.getMessage());
        }
    }

    /** Rotary settings: the global base and scaling, the local base of sliding layers, the rotating share of a head. */
    private record RopeSpec(double theta, double local, RopeScaling scaling, double partial) {
        /** transformers 5 keeps them in rope_parameters (per layer type for Gemma 3); 4.x in rope_theta + rope_scaling. */
        static RopeSpec parse(JsonNode c, String where) {
            JsonNode rp = c.get("rope_parameters");
            double partial = c.path("partial_rotary_factor").asDouble(c.path("rotary_pct").asDouble(1.0));
            if (rp != null && rp.isObject() && rp.has("full_attention")) {
                JsonNode full = rp.get("full_attention"), sl = rp.path("sliding_attention");
                double theta = full.path("rope_theta").asDouble(10000.0);
                if (RopeScaling.parse(sl, where).type() != RopeScaling.Type.NONE) {
                    throw new ConfigException(where + ": rope scaling of sliding layers is not supported; remove it from rope_parameters.sliding_attention");
                }
                return new RopeSpec(theta, sl.path("rope_theta").asDouble(theta), RopeScaling.parse(full, where), partial);
            }
            if (rp != null && rp.isObject()) {
                double theta = rp.path("rope_theta").asDouble(c.path("rope_theta").asDouble(10000.0));
                return new RopeSpec(theta, c.path("rope_local_base_freq").asDouble(theta), RopeScaling.parse(rp, where),
                        rp.path("partial_rotary_factor").asDouble(partial));
            }
            // GPT-NeoX configs before transformers 5 call the base rotary_emb_base
            double theta = c.path("rope_theta").asDouble(c.path("rotary_emb_base").asDouble(10000.0));
            return new RopeSpec(theta, c.path("rope_local_base_freq").asDouble(theta), RopeScaling.parse(c.get("rope_scaling"), where), partial);
        }
    }

    /**
     * Which layers use the sliding window: layer_types where the config has it; else Qwen's
     * use_sliding_window (refused when true); else, when sliding_window is set, the layers the
     * descriptor's {@link ConfigKeys.Windows} names (every layer for Mistral, Mixtral, Phi-3; Gemma 2's
     * even layers; Gemma 3's pattern; none for Qwen without use_sliding_window).
     */
    private static boolean[] slidingLayers(JsonNode c, Architecture arch, int layers, String where) {
        boolean[] s = new boolean[Math.max(0, layers)];
        if (c.path("use_sliding_window").asBoolean(false)) {
            throw new ConfigException(where + ": use_sliding_window=true is not supported for " + arch.family()
                    + "; set it to false if sequences fit the window");
        }
        JsonNode types = c.get("layer_types");
        if (types != null && types.isArray()) {
            if (types.size() != layers) throw new ConfigException(where + ": layer_types has " + types.size() + " entries for " + layers + " layers");
            for (int i = 0; i < layers; i++) {
                String t = types.get(i).asText();
                if (!t.equals("sliding_attention") && !t.equals("full_attention")) {
                    throw new ConfigException(where + ": layer_types[" + i + "] '" + t + "' is not supported (sliding_attention, full_attention)");
                }
                s[i] = t.equals("sliding_attention");
            }
            return s;
        }
        if (!c.hasNonNull("sliding_window")) return s;
        return arch.keys().windows().implicit(c, layers);
    }

    private static boolean has(JsonNode c, List<String> keys) { return first(c, keys) != null; }

    private static String first(JsonNode c, List<String> keys) {
        for (String key : keys) if (c.hasNonNull(key)) return key;
        return null;
    }

    private static int firstInt(JsonNode c, List<String> keys, String where) {
        String key = first(c, keys);
        if (key == null) throw new ConfigException(where + ": missing integer key '" + keys.getFirst() + "'");
        return integer(c, key, where);
    }

    private static int firstId(JsonNode n) {
        if (n == null || n.isNull()) return -1;
        if (n.isArray()) return n.isEmpty() ? -1 : n.get(0).asInt();
        return n.asInt();
    }

    private static int integer(JsonNode c, String key, String where) {
        JsonNode v = c.get(key);
        if (v == null || !v.canConvertToInt()) throw new ConfigException(where + ": missing integer key '" + key + "'");
        return v.asInt();
    }
}
