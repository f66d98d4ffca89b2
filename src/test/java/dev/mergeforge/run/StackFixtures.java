package dev.mergeforge.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Shape;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Tiny checkpoints of the families whose config.json describes the decoder stack in ways the
 * Llama-only generator does not (per-layer {@code layer_types}, sliding-window patterns, GPT-2's
 * {@code n_layer}, Mixtral's experts, DeepSeek's dense-then-MoE layers), written tensor by tensor
 * with seeded normal values.
 */
public final class StackFixtures {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int H = 8, F = 12, VOCAB = 16, EXPERTS = 2;

    private StackFixtures() {}

    /** A family's config.json with {@code layers} layers, as transformers writes it (the keys that matter here). */
    public static ObjectNode config(String family, int layers, DType dtype) {
        ObjectNode c = JSON.createObjectNode();
        String cls = switch (family) {
            case "llama" -> "LlamaForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            case "gemma2" -> "Gemma2ForCausalLM";
            case "gemma3_text" -> "Gemma3ForCausalLM";
            case "gpt2" -> "GPT2LMHeadModel";
            case "mixtral" -> "MixtralForCausalLM";
            case "deepseek_v3" -> "DeepseekV3ForCausalLM";
            default -> throw new IllegalArgumentException(family);
        };
        c.putArray("architectures").add(cls);
        c.put("model_type", family);
        c.put(family.equals("gpt2") ? "n_layer" : "num_hidden_layers", layers);
        c.put(family.equals("gpt2") ? "n_embd" : "hidden_size", H);
        c.put("vocab_size", VOCAB);
        c.putArray("eos_token_id").add(1).add(2);
        switch (family) {
            case "qwen2", "qwen3" -> {
                c.put("use_sliding_window", true);
                c.put("sliding_window", 32);
                c.put("max_window_layers", 1);
                var lt = c.putArray("layer_types");
                for (int i = 0; i < layers; i++) lt.add(i >= 1 ? "sliding_attention" : "full_attention");
            }
            case "gemma3_text" -> c.put("sliding_window_pattern", 2);
            case "mixtral" -> c.put("num_local_experts", EXPERTS);
            case "deepseek_v3" -> {
                c.put("first_k_dense_replace", 1);
                c.put("moe_layer_freq", 1);
                c.put("n_routed_experts", EXPERTS);
            }
            default -> { }
        }
        c.put("torch_dtype", dtype.torchName());
        c.put("dtype", dtype.torchName());
        return c;
    }

    /** The tensors of one layer: a gated MLP, or experts (Mixtral everywhere; DeepSeek from first_k_dense_replace on). */
    static Map<String, long[]> layer(String family, int i, ObjectNode cfg) {
        Map<String, long[]> t = new LinkedHashMap<>();
        if (family.equals("gpt2")) {
            String p = "transformer.h." + i + ".";
            t.put(p + "ln_1.weight", new long[]{H});
            t.put(p + "attn.c_attn.weight", new long[]{H, 3 * H});
            t.put(p + "mlp.c_fc.weight", new long[]{H, F});
            return t;
        }
        String p = "model.layers." + i + ".";
        t.put(p + "input_layernorm.weight", new long[]{H});
        t.put(p + "self_attn.q_proj.weight", new long[]{H, H});
        boolean moe = family.equals("mixtral") || family.equals("deepseek_v3") && i >= cfg.get("first_k_dense_replace").asInt();
        if (!moe) {
            t.put(p + "mlp.gate_proj.weight", new long[]{F, H});
            t.put(p + "mlp.down_proj.weight", new long[]{H, F});
        } else if (family.equals("mixtral")) {
            t.put(p + "block_sparse_moe.gate.weight", new long[]{EXPERTS, H});
            for (int e = 0; e < EXPERTS; e++) t.put(p + "block_sparse_moe.experts." + e + ".w1.weight", new long[]{F, H});
        } else {
            t.put(p + "mlp.gate.weight", new long[]{EXPERTS, H});
            for (int e = 0; e < EXPERTS; e++) t.put(p + "mlp.experts." + e + ".gate_proj.weight", new long[]{F, H});
            t.put(p + "mlp.shared_experts.gate_proj.weight", new long[]{F, H});
        }
        return t;
    }

    /** Writes a checkpoint of {@code family} into dir; values depend on (seed, tensor name) only. */
    public static Path write(Path dir, String family, int layers, DType dtype, long seed) throws IOException {
        ObjectNode cfg = config(family, layers, dtype);
        Map<String, long[]> tensors = new LinkedHashMap<>();
        tensors.put(family.equals("gpt2") ? "transformer.wte.weight" : "model.embed_tokens.weight", new long[]{VOCAB, H});
        for (int i = 0; i < layers; i++) tensors.putAll(layer(family, i, cfg));
        tensors.put(family.equals("gpt2") ? "transformer.ln_f.weight" : "model.norm.weight", new long[]{H});
        if (!family.equals("gpt2")) tensors.put("lm_head.weight", new long[]{VOCAB, H});
        Files.createDirectories(dir);
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (var e : tensors.entrySet()) entries.add(new SafetensorsWriter.Entry(e.getKey(), dtype, Shape.of(e.getValue())));
        try (SafetensorsWriter w = new SafetensorsWriter(dir.resolve("model.safetensors"), entries, Map.of("format", "pt"))) {
            for (SafetensorsWriter.Entry e : entries) fill(w.slot(e.name()), e, seed);
        }
        Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
        return dir;
    }

    private static void fill(MemorySegment slot, SafetensorsWriter.Entry e, long seed) {
        SplittableRandom r = new SplittableRandom(seed * 31 + e.name().hashCode());
        var f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        var i16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < e.shape().numel(); i++) {
            float v = (float) (0.02 * r.nextGaussian());
            switch (e.dtype()) {
                case F32 -> slot.setAtIndex(f32, i, v);
                case BF16 -> slot.setAtIndex(i16, i, Floats.floatToBf16(v));
                case F16 -> slot.setAtIndex(i16, i, Floats.floatToF16(v));
                default -> throw new IllegalArgumentException(e.dtype().toString());
            }
        }
    }
}
