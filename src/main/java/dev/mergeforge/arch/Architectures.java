package dev.mergeforge.arch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.arch.Components.Attention;
import dev.mergeforge.arch.Components.Mlp;
import dev.mergeforge.arch.Components.Norm;
import dev.mergeforge.arch.Components.Positions;
import dev.mergeforge.arch.Components.QkNorm;
import dev.mergeforge.arch.Components.Residual;
import dev.mergeforge.arch.Components.Routing;
import dev.mergeforge.errors.ConfigException;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

import static dev.mergeforge.arch.WeightSpec.linear;
import static dev.mergeforge.arch.WeightSpec.of;

/**
 * The registry of family descriptors, in a stable order (the order of the supported list in
 * messages). config.json's {@code architectures[0]} selects a family; {@code model_type} does
 * when {@code architectures} is absent. Adding a dense family that reuses existing components is
 * one entry here and its reference test.
 */
public final class Architectures {
    private Architectures() {}

    private static final List<WeightSpec> LLAMA_PRE = List.of(of("model.embed_tokens.weight", Role.EMBEDDING));
    private static final List<WeightSpec> LLAMA_POST = List.of(of("model.norm.weight", Role.FINAL_NORM), of("lm_head.weight", Role.HEAD));
    private static final List<WeightSpec> ATTN = List.of(
            linear("self_attn.q_proj.weight", Role.Q, "attn_in"), linear("self_attn.k_proj.weight", Role.K, "attn_in"),
            linear("self_attn.v_proj.weight", Role.V, "attn_in"));
    private static final WeightSpec O_PROJ = linear("self_attn.o_proj.weight", Role.O, "attn_out");
    private static final List<WeightSpec> QK_NORMS = List.of(of("self_attn.q_norm.weight", Role.Q_NORM), of("self_attn.k_norm.weight", Role.K_NORM));
    private static final List<WeightSpec> GATED_MLP = List.of(
            linear("mlp.gate_proj.weight", Role.GATE, "mlp_in"), linear("mlp.up_proj.weight", Role.UP, "mlp_in"),
            linear("mlp.down_proj.weight", Role.DOWN, "mlp_act"));
    private static final Components LLAMA_PARTS = new Components(Norm.RMS, Attention.SEPARATE, QkNorm.NONE, Mlp.GATED, Positions.ROPE,
            Residual.SEQUENTIAL, false, Routing.NONE);

    /** Qwen2/Qwen3 slide only with use_sliding_window, from max_window_layers on. */
    private static final ConfigKeys QWEN_KEYS = ConfigKeys.HF.withWindows(ConfigKeys.Windows.FROM_MAX_WINDOW_LAYERS);

    public static final Architecture LLAMA = llamaLike("llama", "LlamaForCausalLM", "llama", List.of());
    public static final Architecture MISTRAL = llamaLike("mistral", "MistralForCausalLM", "mistral", List.of());
    public static final Architecture QWEN2 = new Architecture("qwen2", List.of("Qwen2ForCausalLM"), List.of("qwen2"), "model.layers.",
            QWEN_KEYS, LLAMA_PRE, layer(of("input_layernorm.weight", Role.ATTN_NORM), ATTN, O_PROJ,
            of("post_attention_layernorm.weight", Role.MLP_NORM), GATED_MLP), LLAMA_POST, false, false, List.of("layer_types"), LLAMA_PARTS);

    public static final Architecture QWEN3 = new Architecture("qwen3", List.of("Qwen3ForCausalLM"), List.of("qwen3"), "model.layers.",
            QWEN_KEYS, LLAMA_PRE, layer(of("input_layernorm.weight", Role.ATTN_NORM), ATTN, QK_NORMS, O_PROJ,
            of("post_attention_layernorm.weight", Role.MLP_NORM), GATED_MLP), LLAMA_POST, false, false, List.of("layer_types"),
            new Components(Norm.RMS, Attention.SEPARATE, QkNorm.PER_HEAD, Mlp.GATED, Positions.ROPE, Residual.SEQUENTIAL, false, Routing.NONE));

    public static final Architecture PHI3 = new Architecture("phi3", List.of("Phi3ForCausalLM"), List.of("phi3"), "model.layers.",
            ConfigKeys.HF, LLAMA_PRE, layer(of("input_layernorm.weight", Role.ATTN_NORM),
            linear("self_attn.qkv_proj.weight", Role.QKV, "attn_in"), O_PROJ, of("post_attention_layernorm.weight", Role.MLP_NORM),
            linear("mlp.gate_up_proj.weight", Role.GATE_UP, "mlp_in"), linear("mlp.down_proj.weight", Role.DOWN, "mlp_act")),
            LLAMA_POST, false, false, List.of(),
            new Components(Norm.RMS, Attention.FUSED_CONCAT, QkNorm.NONE, Mlp.FUSED_GATED, Positions.ROPE, Residual.SEQUENTIAL, false, Routing.NONE));

    public static final Architecture OLMO2 = new Architecture("olmo2", List.of("Olmo2ForCausalLM"), List.of("olmo2"), "model.layers.",
            ConfigKeys.HF, LLAMA_PRE, layer(ATTN, QK_NORMS, O_PROJ, of("post_attention_layernorm.weight", Role.ATTN_OUT_NORM), GATED_MLP,
            of("post_feedforward_layernorm.weight", Role.MLP_OUT_NORM)), LLAMA_POST, false, false, List.of(),
            new Components(Norm.RMS, Attention.SEPARATE, QkNorm.WHOLE, Mlp.GATED, Positions.ROPE, Residual.SEQUENTIAL, false, Routing.NONE));

    private static final List<WeightSpec> GEMMA2_NORMS_ATTN = List.of(of("input_layernorm.weight", Role.ATTN_NORM));
    private static final ConfigKeys GEMMA_KEYS = ConfigKeys.HF.withActivation("hidden_activation", "hidden_act");

    public static final Architecture GEMMA2 = new Architecture("gemma2", List.of("Gemma2ForCausalLM"), List.of("gemma2"), "model.layers.",
            GEMMA_KEYS.withWindows(ConfigKeys.Windows.EVEN), LLAMA_PRE, layer(GEMMA2_NORMS_ATTN, ATTN, O_PROJ, gemmaSandwich()), LLAMA_POST, false, true,
            List.of("layer_types"),
            new Components(Norm.RMS_ONE_PLUS, Attention.SEPARATE, QkNorm.NONE, Mlp.GATED, Positions.ROPE, Residual.SEQUENTIAL, true, Routing.NONE));

    public static final Architecture GEMMA3_TEXT = new Architecture("gemma3_text", List.of("Gemma3ForCausalLM"), List.of("gemma3_text"),
            "model.layers.", GEMMA_KEYS.withWindows(ConfigKeys.Windows.PATTERN), LLAMA_PRE, layer(GEMMA2_NORMS_ATTN, ATTN, QK_NORMS, O_PROJ,
            gemmaSandwich()), LLAMA_POST, false,
            true, List.of("layer_types"),
            new Components(Norm.RMS_ONE_PLUS, Attention.SEPARATE, QkNorm.PER_HEAD, Mlp.GATED, Positions.ROPE, Residual.SEQUENTIAL, true, Routing.NONE));

    /** Gemma (1): merged with its descriptor's roles and tying; no reference here to check a forward pass against. */
    public static final Architecture GEMMA = new Architecture("gemma", List.of("GemmaForCausalLM"), List.of("gemma"), "model.layers.",
            GEMMA_KEYS, LLAMA_PRE, layer(of("input_layernorm.weight", Role.ATTN_NORM), ATTN, O_PROJ,
            of("post_attention_layernorm.weight", Role.MLP_NORM), GATED_MLP), LLAMA_POST, false, true, List.of(), null);

    public static final Architecture GPT2 = new Architecture("gpt2", List.of("GPT2LMHeadModel"), List.of("gpt2"), "transformer.h.",
            new ConfigKeys(List.of("n_embd"), List.of("n_layer"), List.of("n_head"), List.of(), List.of("n_inner"),
                    List.of("layer_norm_epsilon"), List.of("activation_function"), ConfigKeys.Windows.ALL),
            List.of(of("transformer.wte.weight", Role.EMBEDDING), of("transformer.wpe.weight", Role.POSITION_EMBEDDING)),
            layer(of("ln_1.weight", Role.ATTN_NORM), linear("attn.c_attn.weight", Role.QKV, "attn_in"),
                    linear("attn.c_proj.weight", Role.O, "attn_out"), of("ln_2.weight", Role.MLP_NORM),
                    linear("mlp.c_fc.weight", Role.UP, "mlp_in"), linear("mlp.c_proj.weight", Role.DOWN, "mlp_act")),
            List.of(of("transformer.ln_f.weight", Role.FINAL_NORM), of("lm_head.weight", Role.HEAD)), true, true, List.of(),
            new Components(Norm.LAYER_NORM, Attention.FUSED_CONCAT, QkNorm.NONE, Mlp.PLAIN, Positions.LEARNED, Residual.SEQUENTIAL, false,
                    Routing.NONE));

    public static final Architecture GPT_NEOX = new Architecture("gpt_neox", List.of("GPTNeoXForCausalLM"), List.of("gpt_neox"),
            "gpt_neox.layers.", ConfigKeys.HF.withEps("layer_norm_eps").withoutKvHeads(),
            List.of(of("gpt_neox.embed_in.weight", Role.EMBEDDING)),
            layer(of("input_layernorm.weight", Role.ATTN_NORM), linear("attention.query_key_value.weight", Role.QKV, "attn_in"),
                    linear("attention.dense.weight", Role.O, "attn_out"), of("post_attention_layernorm.weight", Role.MLP_NORM),
                    linear("mlp.dense_h_to_4h.weight", Role.UP, "mlp_in"), linear("mlp.dense_4h_to_h.weight", Role.DOWN, "mlp_act")),
            List.of(of("gpt_neox.final_layer_norm.weight", Role.FINAL_NORM), of("embed_out.weight", Role.HEAD)), false, false, List.of(),
            new Components(Norm.LAYER_NORM, Attention.FUSED_PER_HEAD, QkNorm.NONE, Mlp.PLAIN, Positions.ROPE, Residual.PARALLEL, false,
                    Routing.NONE));

    public static final Architecture MIXTRAL = new Architecture("mixtral", List.of("MixtralForCausalLM"), List.of("mixtral"), "model.layers.",
            ConfigKeys.HF, LLAMA_PRE, layer(of("input_layernorm.weight", Role.ATTN_NORM), ATTN, O_PROJ,
            of("post_attention_layernorm.weight", Role.MLP_NORM), linear("block_sparse_moe.gate.weight", Role.ROUTER, "mlp_in"),
            linear("block_sparse_moe.experts.{e}.w1.weight", Role.EXPERT_GATE, "expert_in"),
            linear("block_sparse_moe.experts.{e}.w3.weight", Role.EXPERT_UP, "expert_in"),
            linear("block_sparse_moe.experts.{e}.w2.weight", Role.EXPERT_DOWN, "expert_act")), LLAMA_POST, false, false, List.of(),
            new Components(Norm.RMS, Attention.SEPARATE, QkNorm.NONE, Mlp.MOE, Positions.ROPE, Residual.SEQUENTIAL, false, Routing.RENORMALISE));

    public static final Architecture QWEN3_MOE = new Architecture("qwen3_moe", List.of("Qwen3MoeForCausalLM"), List.of("qwen3_moe"),
            "model.layers.", QWEN_KEYS, LLAMA_PRE, layer(of("input_layernorm.weight", Role.ATTN_NORM), ATTN, QK_NORMS, O_PROJ,
            of("post_attention_layernorm.weight", Role.MLP_NORM), linear("mlp.gate.weight", Role.ROUTER, "mlp_in"),
            linear("mlp.experts.{e}.gate_proj.weight", Role.EXPERT_GATE, "expert_in"),
            linear("mlp.experts.{e}.up_proj.weight", Role.EXPERT_UP, "expert_in"),
            linear("mlp.experts.{e}.down_proj.weight", Role.EXPERT_DOWN, "expert_act")), LLAMA_POST, false, false, List.of(),
            new Components(Norm.RMS, Attention.SEPARATE, QkNorm.PER_HEAD, Mlp.MOE, Positions.ROPE, Residual.SEQUENTIAL, false,
                    Routing.CONFIG_NORM_TOPK_PROB));

    /**
     * Qwen2-MoE: Qwen2's attention (q/k/v biases), routed experts as Qwen3-MoE names them, and a
     * shared expert every token passes through, scaled by sigmoid of its one-row gate
     * (docs/architectures.md). Dense layers between MoE layers (mlp_only_layers) are refused by the forward pass.
     */
    public static final Architecture QWEN2_MOE = new Architecture("qwen2_moe", List.of("Qwen2MoeForCausalLM"), List.of("qwen2_moe"),
            "model.layers.", QWEN_KEYS, LLAMA_PRE, layer(of("input_layernorm.weight", Role.ATTN_NORM), ATTN, O_PROJ,
            of("post_attention_layernorm.weight", Role.MLP_NORM), linear("mlp.gate.weight", Role.ROUTER, "mlp_in"),
            linear("mlp.experts.{e}.gate_proj.weight", Role.EXPERT_GATE, "expert_in"),
            linear("mlp.experts.{e}.up_proj.weight", Role.EXPERT_UP, "expert_in"),
            linear("mlp.experts.{e}.down_proj.weight", Role.EXPERT_DOWN, "expert_act"),
            linear("mlp.shared_expert.gate_proj.weight", Role.SHARED_GATE, "mlp_in"),
            linear("mlp.shared_expert.up_proj.weight", Role.SHARED_UP, "mlp_in"),
            linear("mlp.shared_expert.down_proj.weight", Role.SHARED_DOWN, "shared_act"),
            linear("mlp.shared_expert_gate.weight", Role.SHARED_EXPERT_GATE, "mlp_in")), LLAMA_POST, false, false, List.of("layer_types"),
            new Components(Norm.RMS, Attention.SEPARATE, QkNorm.NONE, Mlp.MOE, Positions.ROPE, Residual.SEQUENTIAL, false,
                    Routing.CONFIG_NORM_TOPK_PROB));

    /** Every descriptor, in the order messages list them. */
    public static final List<Architecture> ALL = List.of(LLAMA, MISTRAL, QWEN2, QWEN3, GEMMA, GEMMA2, GEMMA3_TEXT, PHI3, OLMO2, GPT2,
            GPT_NEOX, MIXTRAL, QWEN2_MOE, QWEN3_MOE);

    private static Architecture llamaLike(String family, String cls, String type, List<String> lists) {
        return new Architecture(family, List.of(cls), List.of(type), "model.layers.", ConfigKeys.HF, LLAMA_PRE,
                layer(of("input_layernorm.weight", Role.ATTN_NORM), ATTN, O_PROJ, of("post_attention_layernorm.weight", Role.MLP_NORM),
                        GATED_MLP), LLAMA_POST, false, false, lists, LLAMA_PARTS);
    }

    private static List<WeightSpec> gemmaSandwich() {
        return List.of(of("post_attention_layernorm.weight", Role.ATTN_OUT_NORM), of("pre_feedforward_layernorm.weight", Role.MLP_NORM),
                GATED_MLP.get(0), GATED_MLP.get(1), GATED_MLP.get(2), of("post_feedforward_layernorm.weight", Role.MLP_OUT_NORM));
    }

    /** Flattens specs and lists of specs, in order. */
    private static List<WeightSpec> layer(Object... parts) {
        List<WeightSpec> out = new ArrayList<>();
        for (Object p : parts) {
            if (p instanceof WeightSpec s) out.add(s);
            else if (p instanceof List<?> l) for (Object o : l) out.add((WeightSpec) o);
            else throw new IllegalArgumentException("not a weight spec: " + p);
        }
        return out;
    }

    /** The descriptor config.json selects, or empty when it names a family we have none for. */
    public static java.util.Optional<Architecture> find(JsonNode config) {
        if (config == null) return java.util.Optional.empty();
        JsonNode arch = config.path("architectures");
        if (arch.isArray() && !arch.isEmpty()) {
            String cls = arch.get(0).asText();
            return ALL.stream().filter(a -> a.classNames().contains(cls)).findFirst();
        }
        String type = config.path("model_type").asText("");
        return ALL.stream().filter(a -> a.modelTypes().contains(type)).findFirst();
    }

    /** The descriptor of a checkpoint, or the shared conventions of {@link UnknownArchitecture} for an unknown family. */
    public static TensorRoles roles(JsonNode config) {
        return find(config).<TensorRoles>map(a -> a).orElseGet(() -> new UnknownArchitecture(familyName(config),
                config == null ? null : config.path("model_type").asText(null)));
    }

    /** The families with a forward pass, in registry order ("llama, mistral, ..."). */
    public static String runnableList() {
        return ALL.stream().filter(Architecture::runnable).map(Architecture::family).collect(Collectors.joining(", "));
    }

    /**
     * The descriptor of a model that is about to be run (calibrate, eval, AIM's calibration, RegMean's
     * Grams), or a one-line error naming the family and the supported list.
     */
    public static Architecture requireRunnable(JsonNode config, String where) {
        Architecture a = find(config).orElse(null);
        if (a == null || !a.runnable()) {
            throw new ConfigException(where + ": architecture " + familyName(config) + " has no forward pass here (supported: "
                    + runnableList() + "); merge it with a method that needs no calibration, or calibrate a supported model");
        }
        return a;
    }

    /** architectures[0] (with model_type), for messages. */
    static String familyName(JsonNode config) {
        if (config == null) return "(no config.json)";
        JsonNode arch = config.path("architectures");
        String type = config.path("model_type").asText("");
        String cls = arch.isArray() && !arch.isEmpty() ? arch.get(0).asText() : "";
        if (cls.isEmpty()) return type.isEmpty() ? "(unnamed)" : "'" + type + "'";
        return "'" + cls + "'" + (type.isEmpty() ? "" : " (model_type " + type + ")");
    }
}
