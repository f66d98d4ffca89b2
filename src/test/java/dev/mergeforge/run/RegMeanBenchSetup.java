package dev.mergeforge.run;

import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

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
 * Writes a random Llama-shaped model pair, their Gram files and a regmean config for the measurement
 * in docs/data-informed.md (not a test). Args: DIR HIDDEN INTERMEDIATE LAYERS VOCAB. Grams are
 * G[i][j] = s_i·s_j·0.6^|i−j| (positive definite), cheap to write at any size.
 */
public final class RegMeanBenchSetup {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int h = Integer.parseInt(args[1]), f = Integer.parseInt(args[2]), layers = Integer.parseInt(args[3]), vocab = Integer.parseInt(args[4]);
        StringBuilder yaml = new StringBuilder("merge_method: regmean\nmodels:\n");
        for (int m = 0; m < 2; m++) {
            Path md = Files.createDirectories(dir.resolve("m" + m));
            Map<String, Shape> t = new LinkedHashMap<>();
            t.put("model.embed_tokens.weight", Shape.of(vocab, h));
            Map<String, Shape> g = new LinkedHashMap<>();
            for (int l = 0; l < layers; l++) {
                String p = "model.layers." + l + ".";
                t.put(p + "input_layernorm.weight", Shape.of(h));
                for (String n : List.of("q_proj", "k_proj", "v_proj", "o_proj")) t.put(p + "self_attn." + n + ".weight", Shape.of(h, h));
                t.put(p + "post_attention_layernorm.weight", Shape.of(h));
                t.put(p + "mlp.gate_proj.weight", Shape.of(f, h));
                t.put(p + "mlp.up_proj.weight", Shape.of(f, h));
                t.put(p + "mlp.down_proj.weight", Shape.of(h, f));
                g.put(p + "self_attn.q_proj.weight", Shape.of(h, h));
                g.put(p + "self_attn.o_proj.weight", Shape.of(h, h));
                g.put(p + "mlp.gate_proj.weight", Shape.of(h, h));
                g.put(p + "mlp.down_proj.weight", Shape.of(f, f));
            }
            t.put("model.norm.weight", Shape.of(h));
            t.put("lm_head.weight", Shape.of(vocab, h));
            SplittableRandom r = new SplittableRandom(m);
            write(md.resolve("model.safetensors"), t, Map.of("format", "pt"), (name, s, seg) -> {
                for (long i = 0; i < s.numel(); i++) seg.setAtIndex(F32, i, (float) (r.nextDouble() - 0.5) * 0.1f);
            });
            Files.writeString(md.resolve("config.json"), """
                    {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d, "intermediate_size": %d,
                     "num_hidden_layers": %d, "num_attention_heads": %d, "vocab_size": %d, "torch_dtype": "float32"}
                    """.formatted(h, f, layers, Math.max(1, h / 64), vocab));
            StringBuilder shared = new StringBuilder("{");
            for (int l = 0; l < layers; l++) {
                String p = "model.layers." + l + ".";
                shared.append(l == 0 ? "" : ",").append("\"%sself_attn.k_proj.weight\":\"%sself_attn.q_proj.weight\",\"%sself_attn.v_proj.weight\":\"%sself_attn.q_proj.weight\",\"%smlp.up_proj.weight\":\"%smlp.gate_proj.weight\"".formatted(p, p, p, p, p, p));
            }
            Path gf = dir.resolve("gram" + m + ".safetensors");
            write(gf, g, Map.of("stat", "gram", "shared_inputs", shared.append('}').toString()), (name, s, seg) -> {
                int n = (int) s.dim(0);
                double[] sc = new double[n];
                for (int i = 0; i < n; i++) sc[i] = 0.5 + r.nextDouble();
                for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) seg.setAtIndex(F32, (long) i * n + j, (float) (sc[i] * sc[j] * Math.pow(0.6, Math.abs(i - j))));
            });
            yaml.append("  - model: ").append(md).append("\n    calibration: {stats: ").append(gf).append("}\n");
        }
        Files.writeString(dir.resolve("regmean.yaml"), yaml.append("dtype: float32\n").toString());
    }

    interface Fill { void fill(String name, Shape s, MemorySegment seg); }

    static void write(Path file, Map<String, Shape> t, Map<String, String> meta, Fill fill) {
        List<SafetensorsWriter.Entry> e = new ArrayList<>();
        t.forEach((n, s) -> e.add(new SafetensorsWriter.Entry(n, DType.F32, s)));
        try (SafetensorsWriter w = new SafetensorsWriter(file, e, meta)) {
            t.forEach((n, s) -> fill.fill(n, s, w.slot(n)));
        }
    }
}
