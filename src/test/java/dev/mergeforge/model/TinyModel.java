package dev.mergeforge.model;

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
import java.util.Random;

/**
 * A tiny random Llama-family model written to a folder: config.json + model.safetensors. The
 * weights are kept here in double (as rounded to the stored dtype) for the reference forward.
 */
public final class TinyModel {
    final ObjectNode config;
    final Map<String, double[]> weights = new LinkedHashMap<>();
    final Map<String, long[]> shapes = new LinkedHashMap<>();
    int hidden, inter, layers, heads, kv, headDim, vocab, window;
    double eps, theta;
    boolean tied;
    // rope: type "none" | "linear" | "llama3"
    String rope = "none";
    double factor = 1, low = 1, high = 4, origMax = 8;

    TinyModel(String type) {
        config = new ObjectMapper().createObjectNode();
        config.put("model_type", type);
    }

    /** Fills config.json and random weights; biases per flags. */
    public TinyModel build(long seed, boolean qkvBias, boolean ropeParametersStyle) {
        config.put("hidden_size", hidden).put("intermediate_size", inter).put("num_hidden_layers", layers)
                .put("num_attention_heads", heads).put("num_key_value_heads", kv).put("vocab_size", vocab)
                .put("rms_norm_eps", eps).put("tie_word_embeddings", tied).put("hidden_act", "silu")
                .put("bos_token_id", 1).put("eos_token_id", 2);
        if (headDim != hidden / heads) config.put("head_dim", headDim);
        if (window > 0) config.put("sliding_window", window);
        ObjectNode scaling = new ObjectMapper().createObjectNode();
        switch (rope) {
            case "none" -> scaling = null;
            case "linear" -> scaling.put("type", "linear").put("factor", factor);
            case "llama3" -> scaling.put("rope_type", "llama3").put("factor", factor).put("low_freq_factor", low)
                    .put("high_freq_factor", high).put("original_max_position_embeddings", origMax);
            default -> throw new IllegalArgumentException(rope);
        }
        if (ropeParametersStyle) {
            ObjectNode rp = scaling == null ? new ObjectMapper().createObjectNode().put("rope_type", "default") : scaling;
            rp.put("rope_theta", theta);
            config.set("rope_parameters", rp);
        } else {
            config.put("rope_theta", theta);
            if (scaling != null) config.set("rope_scaling", scaling);
        }
        Random r = new Random(seed);
        int qd = heads * headDim, kvd = kv * headDim;
        add(r, "model.embed_tokens.weight", 1.0, vocab, hidden);
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".";
            norm(r, p + "input_layernorm.weight", hidden);
            add(r, p + "self_attn.q_proj.weight", 0.5, qd, hidden);
            add(r, p + "self_attn.k_proj.weight", 0.5, kvd, hidden);
            add(r, p + "self_attn.v_proj.weight", 0.5, kvd, hidden);
            if (qkvBias) {
                add(r, p + "self_attn.q_proj.bias", 0.3, qd);
                add(r, p + "self_attn.k_proj.bias", 0.3, kvd);
                add(r, p + "self_attn.v_proj.bias", 0.3, kvd);
            }
            add(r, p + "self_attn.o_proj.weight", 0.3, hidden, qd);
            norm(r, p + "post_attention_layernorm.weight", hidden);
            add(r, p + "mlp.gate_proj.weight", 0.5, inter, hidden);
            add(r, p + "mlp.up_proj.weight", 0.5, inter, hidden);
            add(r, p + "mlp.down_proj.weight", 0.3, hidden, inter);
        }
        norm(r, "model.norm.weight", hidden);
        if (!tied) add(r, "lm_head.weight", 0.5, vocab, hidden);
        return this;
    }

    private void add(Random r, String name, double scale, long... dims) {
        long n = 1;
        for (long d : dims) n *= d;
        double[] v = new double[(int) n];
        for (int i = 0; i < n; i++) v[i] = (r.nextDouble() * 2 - 1) * scale;
        weights.put(name, v);
        shapes.put(name, dims);
    }

    private void norm(Random r, String name, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = 1 + (r.nextDouble() * 2 - 1) * 0.3;
        weights.put(name, v);
        shapes.put(name, new long[] {n});
    }

    double[] w(String name) { return weights.get(name); }

    public int vocab() { return vocab; }

    /** Writes the folder; weights are rounded to {@code dtype} and the doubles updated to match. */
    public Path write(Path dir, DType dtype) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        shapes.forEach((n, s) -> entries.add(new SafetensorsWriter.Entry(n, dtype, Shape.of(s))));
        try (SafetensorsWriter wr = new SafetensorsWriter(dir.resolve("model.safetensors"), entries, Map.of("format", "pt"))) {
            for (var e : weights.entrySet()) {
                MemorySegment slot = wr.slot(e.getKey());
                double[] v = e.getValue();
                for (int i = 0; i < v.length; i++) {
                    switch (dtype) {
                        case F32 -> {
                            float f = (float) v[i];
                            slot.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, f);
                            v[i] = f;
                        }
                        case BF16 -> {
                            short b = Floats.floatToBf16((float) v[i]);
                            slot.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, b);
                            v[i] = Floats.bf16ToFloat(b);
                        }
                        default -> throw new IllegalArgumentException(dtype.toString());
                    }
                }
            }
        }
        return dir;
    }
}
