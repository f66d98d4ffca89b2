package dev.mergeforge.calib;

import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Writes tiny random Llama checkpoints (float32, one model.safetensors) for tests. */
public final class TinyLlama {
    public static final int VOCAB = 24, HIDDEN = 12, INTER = 20, HEADS = 2, KV_HEADS = 1, HEAD_DIM = 6;

    private TinyLlama() {}

    /** Writes {@code dir} with {@code layers} decoder layers and weights drawn from {@code seed}; returns the tensors. */
    public static Map<String, float[]> write(Path dir, int layers, long seed) {
        Random r = new Random(seed);
        Map<String, float[]> t = new LinkedHashMap<>();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        add(t, shapes, "model.embed_tokens.weight", r, 1.0, false, VOCAB, HIDDEN);
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".";
            add(t, shapes, p + "input_layernorm.weight", r, 0.2, true, HIDDEN);
            add(t, shapes, p + "self_attn.q_proj.weight", r, 0.4, false, HEADS * HEAD_DIM, HIDDEN);
            add(t, shapes, p + "self_attn.k_proj.weight", r, 0.4, false, KV_HEADS * HEAD_DIM, HIDDEN);
            add(t, shapes, p + "self_attn.v_proj.weight", r, 0.4, false, KV_HEADS * HEAD_DIM, HIDDEN);
            add(t, shapes, p + "self_attn.o_proj.weight", r, 0.3, false, HIDDEN, HEADS * HEAD_DIM);
            add(t, shapes, p + "post_attention_layernorm.weight", r, 0.2, true, HIDDEN);
            add(t, shapes, p + "mlp.gate_proj.weight", r, 0.3, false, INTER, HIDDEN);
            add(t, shapes, p + "mlp.up_proj.weight", r, 0.3, false, INTER, HIDDEN);
            add(t, shapes, p + "mlp.down_proj.weight", r, 0.3, false, HIDDEN, INTER);
        }
        add(t, shapes, "model.norm.weight", r, 0.2, true, HIDDEN);
        add(t, shapes, "lm_head.weight", r, 0.3, false, VOCAB, HIDDEN);
        writeTensors(dir.resolve("model.safetensors"), t, shapes);
        String cfg = """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d, "intermediate_size": %d,
                 "num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d, "head_dim": %d,
                 "vocab_size": %d, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
                 "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "torch_dtype": "float32"}
                """.formatted(HIDDEN, INTER, layers, HEADS, KV_HEADS, HEAD_DIM, VOCAB);
        try {
            Files.writeString(dir.resolve("config.json"), cfg);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return t;
    }

    private static void add(Map<String, float[]> t, Map<String, Shape> shapes, String name, Random r, double scale, boolean norm, long... dims) {
        Shape s = Shape.of(dims);
        float[] v = new float[Math.toIntExact(s.numel())];
        for (int i = 0; i < v.length; i++) v[i] = (float) (norm ? 1 + scale * r.nextGaussian() : scale * r.nextGaussian());
        t.put(name, v);
        shapes.put(name, s);
    }

    /** Writes float32 tensors with the given shapes (and metadata) into one safetensors file. */
    public static void writeTensors(Path file, Map<String, float[]> t, Map<String, Shape> shapes, Map<String, String> meta) {
        try {
            Files.createDirectories(file.getParent());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        t.forEach((n, v) -> entries.add(new SafetensorsWriter.Entry(n, DType.F32, shapes.get(n))));
        try (SafetensorsWriter w = new SafetensorsWriter(file, entries, meta)) {
            t.forEach((n, v) -> MemorySegment.copy(v, 0, w.slot(n), ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, v.length));
        }
    }

    static void writeTensors(Path file, Map<String, float[]> t, Map<String, Shape> shapes) {
        writeTensors(file, t, shapes, Map.of("format", "pt"));
    }
}
