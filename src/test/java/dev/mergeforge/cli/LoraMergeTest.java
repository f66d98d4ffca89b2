package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
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

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * LoRA adapters applied while the base streams (docs/io.md, "LoRA adapters"), through the CLI:
 * merged tensors against W + s·B·A computed here in double, for plain and rsLoRA scaling, rank and
 * alpha patterns, modules_to_save, embedding adapters and GPT-2's transposed Conv1D layout.
 */
class LoraMergeTest {
    @TempDir static Path root;
    static Path llama, gpt2;
    @TempDir Path dir;

    @BeforeAll
    static void bases() {
        llama = RandomModels.builder().arch(Arch.LLAMA).hidden(16).intermediate(24).layers(2).heads(2).kvHeads(2).vocab(20)
                .maxPositions(32).dtype(DType.F32).seed(11).write(root.resolve("llama"));
        gpt2 = RandomModels.builder().arch(Arch.GPT2).hidden(16).intermediate(32).layers(2).heads(2).kvHeads(2).vocab(20)
                .maxPositions(32).dtype(DType.BF16).seed(12).write(root.resolve("gpt2"));
    }

    /** A random adapter tensor, kept for the reference. */
    record T(String name, long[] shape, double[] values) {}

    static T random(String name, Random r, long... shape) {
        int n = 1;
        for (long d : shape) n *= (int) d;
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * 0.2);
        return new T(name, shape, v);
    }

    /** Writes adapter_config.json and adapter_model.safetensors (float32) under dir/name. */
    static Path adapter(Path parent, String name, String config, List<T> tensors) throws IOException {
        Path d = Files.createDirectories(parent.resolve(name));
        Files.writeString(d.resolve("adapter_config.json"), config);
        List<SafetensorsWriter.Entry> es = new ArrayList<>();
        for (T t : tensors) es.add(new SafetensorsWriter.Entry(t.name(), DType.F32, Shape.of(t.shape())));
        try (SafetensorsWriter w = new SafetensorsWriter(d.resolve("adapter_model.safetensors"), es, Map.of("format", "pt"));
             Arena arena = Arena.ofConfined()) {
            for (T t : tensors) {
                MemorySegment s = arena.allocate(4L * t.values().length);
                for (int i = 0; i < t.values().length; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, (float) t.values()[i]);
                w.write(t.name(), s);
            }
        }
        return d;
    }

    /** (B·A)[i, j] for A [r, in], B [out, r]. */
    static double ba(T a, T b, int i, int j) {
        int r = (int) a.shape()[0], in = (int) a.shape()[1];
        double s = 0;
        for (int k = 0; k < r; k++) s += b.values()[i * r + k] * a.values()[k * in + j];
        return s;
    }

    /** Runs linear over base+adapter (weight 0.6) and the base (0.4): the output is W + 0.6·ΔW. */
    Path merge(Path base, Path adapter, String dtype) throws IOException { return merge(base, adapter, dtype, "java", "out"); }

    Path merge(Path base, Path adapter, String dtype, String backend, String name) throws IOException {
        Path out = dir.resolve(name);
        String cfg = "merge_method: linear\nmodels:\n  - {model: " + base + "+" + adapter + ", parameters: {weight: 0.6}}\n"
                + "  - {model: " + base + ", parameters: {weight: 0.4}}\ndtype: " + dtype + "\n";
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "m.yml", cfg).toString(), out.toString(), "-q", "--backend", backend);
        assertEquals(0, r.exit(), r.err());
        return out;
    }

    @Test
    void llamaAdapterWithPatternsModulesToSaveAndAnEmbeddingAdapter() throws IOException {
        for (boolean rs : new boolean[] {false, true}) {
            Random rnd = new Random(rs ? 5 : 4);
            String p = "base_model.model.";
            String q0 = "model.layers.0.self_attn.q_proj", v1 = "model.layers.1.self_attn.v_proj", emb = "model.embed_tokens";
            T qa = random(p + q0 + ".lora_A.weight", rnd, 4, 16), qb = random(p + q0 + ".lora_B.weight", rnd, 16, 4);
            T va = random(p + v1 + ".lora_A.weight", rnd, 2, 16), vb = random(p + v1 + ".lora_B.weight", rnd, 16, 2);
            T ea = random(p + emb + ".lora_embedding_A", rnd, 4, 20), eb = random(p + emb + ".lora_embedding_B", rnd, 16, 4);
            T head = random(p + "lm_head.weight", rnd, 20, 16);
            Path ad = adapter(dir, "ad" + rs, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_rslora\": " + rs
                    + ", \"target_modules\": [\"q_proj\", \"v_proj\", \"embed_tokens\"], \"modules_to_save\": [\"lm_head\"],"
                    + " \"rank_pattern\": {\"v_proj\": 2}, \"alpha_pattern\": {\"layers.1.self_attn.v_proj\": 3}, \"fan_in_fan_out\": false}",
                    List.of(qa, qb, va, vb, ea, eb, head));
            Path out = merge(llama, ad, "float32");
            double sq = rs ? 8 / Math.sqrt(4) : 8 / 4.0, sv = rs ? 3 / Math.sqrt(2) : 3 / 2.0;
            Map<String, double[]> want = new LinkedHashMap<>();
            double[] w = MergeFixtures.values(llama, q0 + ".weight");
            for (int i = 0; i < 16; i++) for (int j = 0; j < 16; j++) w[i * 16 + j] += 0.6 * sq * ba(qa, qb, i, j);
            want.put(q0 + ".weight", w);
            w = MergeFixtures.values(llama, v1 + ".weight");
            for (int i = 0; i < 16; i++) for (int j = 0; j < 16; j++) w[i * 16 + j] += 0.6 * sv * ba(va, vb, i, j);
            want.put(v1 + ".weight", w);
            // embedding adapters add (B·A)ᵀ: row = token, column = hidden
            w = MergeFixtures.values(llama, emb + ".weight");
            for (int i = 0; i < 20; i++) for (int j = 0; j < 16; j++) w[i * 16 + j] += 0.6 * sq * ba(ea, eb, j, i);
            want.put(emb + ".weight", w);
            w = MergeFixtures.values(llama, "lm_head.weight");
            for (int i = 0; i < w.length; i++) w[i] = 0.6 * head.values()[i] + 0.4 * w[i];
            want.put("lm_head.weight", w);
            want.put("model.layers.0.self_attn.v_proj.weight", MergeFixtures.values(llama, "model.layers.0.self_attn.v_proj.weight"));
            for (var e : want.entrySet()) {
                double[] got = MergeFixtures.values(out, e.getKey());
                for (int i = 0; i < got.length; i++) assertEquals(e.getValue()[i], got[i], 2e-6 * (1 + Math.abs(e.getValue()[i])), e.getKey() + " [" + i + "] rslora=" + rs);
            }
            deleteTree(out);
        }
    }

    @Test
    void gpt2ConvAdapterAddsTheTransposedProductInBf16() throws IOException {
        Random rnd = new Random(9);
        String m = "transformer.h.1.attn.c_attn";
        T a = random("base_model.model." + m + ".lora_A.weight", rnd, 4, 16), b = random("base_model.model." + m + ".lora_B.weight", rnd, 48, 4);
        Path ad = adapter(dir, "conv", "{\"r\": 4, \"lora_alpha\": 16, \"target_modules\": [\"c_attn\"], \"fan_in_fan_out\": true}", List.of(a, b));
        Path out = merge(gpt2, ad, "float32");
        double[] base = MergeFixtures.values(gpt2, m + ".weight"), got = MergeFixtures.values(out, m + ".weight");
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 48; j++) {
                // the adapted weight is stored in the base's bf16, rounded once from double through float32
                double adapted = Floats.bf16ToFloat(Floats.floatToBf16((float) (base[i * 48 + j] + 4.0 * ba(a, b, j, i))));
                double want = 0.6 * adapted + 0.4 * base[i * 48 + j];
                assertEquals(want, got[i * 48 + j], 1e-6 * (1 + Math.abs(want)), "c_attn [" + i + ", " + j + "]");
            }
        }
        // the native backend's fused linear pass reads the adapted view too, bit for bit as the Java backend
        Path nat = merge(gpt2, ad, "float32", "native", "native");
        assertEquals(java.util.Arrays.toString(got), java.util.Arrays.toString(MergeFixtures.values(nat, m + ".weight")));
    }

    @Test
    void anAdapterGivenAsAModelAndBadAdaptersAreOneLineErrors() throws IOException {
        Random rnd = new Random(3);
        String q = "base_model.model.model.layers.0.self_attn.q_proj";
        Path ok = adapter(dir, "ok", "{\"r\": 4, \"lora_alpha\": 8, \"base_model_name_or_path\": \"org/llama\"}",
                List.of(random(q + ".lora_A.weight", rnd, 4, 16), random(q + ".lora_B.weight", rnd, 16, 4)));
        Path cfg = MergeFixtures.yaml(dir, "1.yml", "merge_method: linear\nmodels:\n  - {model: " + ok + ", parameters: {weight: 1}}\n  - {model: " + llama + ", parameters: {weight: 1}}\n");
        CliFailure.mergeFails(1, cfg, dir.resolve("o1"), List.of(ok, llama), List.of(), "PEFT LoRA adapter", "org/llama+" + ok);
        Path dora = adapter(dir, "dora", "{\"r\": 4, \"use_dora\": true}", List.of(random(q + ".lora_A.weight", rnd, 4, 16), random(q + ".lora_B.weight", rnd, 16, 4)));
        fails(dora, "use_dora", "DoRA");
        Path wrongRank = adapter(dir, "rank", "{\"r\": 8}", List.of(random(q + ".lora_A.weight", rnd, 4, 16), random(q + ".lora_B.weight", rnd, 16, 4)));
        fails(wrongRank, "q_proj", "r = 8");
        Path alone = adapter(dir, "alone", "{\"r\": 4}", List.of(random(q + ".lora_A.weight", rnd, 4, 16)));
        fails(alone, "q_proj", "no lora_B");
        Path other = adapter(dir, "other", "{\"r\": 4}", List.of(random("base_model.model.model.layers.7.mlp.up_proj.lora_A.weight", rnd, 4, 16),
                random("base_model.model.model.layers.7.mlp.up_proj.lora_B.weight", rnd, 16, 4)));
        fails(other, "model.layers.7.mlp.up_proj.weight", "does not have");
        Path untargeted = adapter(dir, "untargeted", "{\"r\": 4, \"target_modules\": [\"v_proj\"]}",
                List.of(random(q + ".lora_A.weight", rnd, 4, 16), random(q + ".lora_B.weight", rnd, 16, 4)));
        fails(untargeted, "target_modules", "q_proj");
        Path wide = adapter(dir, "wide", "{\"r\": 4}", List.of(random(q + ".lora_A.weight", rnd, 4, 16), random(q + ".lora_B.weight", rnd, 24, 4)));
        fails(wide, "q_proj.weight", "[24, 16]", "[16, 16]");
    }

    private void fails(Path adapter, String... mustContain) throws IOException {
        Path cfg = MergeFixtures.yaml(dir, "f.yml", "merge_method: linear\nmodels:\n  - {model: " + llama + "+" + adapter + ", parameters: {weight: 1}}\n  - {model: "
                + llama + ", parameters: {weight: 1}}\n");
        CliFailure.mergeFails(1, cfg, dir.resolve("of"), List.of(adapter, llama), List.of(), mustContain);
    }

    static void deleteTree(Path p) throws IOException {
        try (var s = Files.walk(p)) {
            for (Path x : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(x);
        }
    }
}
