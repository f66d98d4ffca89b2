package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.run.StackFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The output's config.json describes the stack a {@code slices:} merge built (the layer count and
 * every per-layer list follow the slices) and the dtype it wrote, so transformers loads it as
 * written; heterogeneous stacks (dense then MoE) take each layer's tensors from its own source.
 */
class CliConfigStackTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String S = "sliding_attention", F = "full_attention";

    @TempDir Path dir;

    /** Output layers [a2, a3, b0, a1, a2]: the reference model a is absent from the middle slice, whose first source then counts. */
    private Path frankenConfig(String method, Path a, Path b, String dtype) throws Exception {
        return MergeFixtures.yaml(dir, "slices.yml", """
                merge_method: %s
                slices:
                  - sources: [{model: %s, layer_range: [2, 4]}]
                  - sources: [{model: %s, layer_range: [0, 1]}]
                  - sources: [{model: %s, layer_range: [1, 3]}]
                dtype: %s
                """.formatted(method, a, b, a, dtype));
    }

    @Test
    void perLayerConfigListsAndTheLayerCountFollowTheSlicesInEveryFamily() throws Exception {
        // expected layer_types of the 5 output layers; null: the family writes none
        Map<String, List<String>> expected = new java.util.LinkedHashMap<>();
        expected.put("llama", null);
        expected.put("qwen2", List.of(S, S, F, S, S));        // input [F, S, S, S] (sliding from max_window_layers = 1)
        expected.put("qwen3", List.of(S, S, F, S, S));
        expected.put("gemma2", List.of(S, F, S, F, S));       // implicit input [S, F, S, F]
        expected.put("gemma3_text", List.of(S, F, S, F, S));  // implicit, sliding_window_pattern 2
        expected.put("gpt2", null);
        expected.put("mixtral", null);
        for (var e : expected.entrySet()) {
            String fam = e.getKey();
            Path a = StackFixtures.write(dir.resolve(fam + "/a"), fam, 4, DType.BF16, 1);
            Path b = StackFixtures.write(dir.resolve(fam + "/b"), fam, 4, DType.BF16, 2);
            Path out = dir.resolve(fam + "/out");
            // a float32 output of bf16 models: config.json must say float32 under both dtype keys
            MergeFixtures.Run r = MergeFixtures.cli("merge", frankenConfig("passthrough", a, b, "float32").toString(), out.toString(), "-q");
            assertEquals(0, r.exit(), fam + ": " + r.err());
            JsonNode c = JSON.readTree(Files.readString(out.resolve("config.json")));
            assertEquals(5, c.get(fam.equals("gpt2") ? "n_layer" : "num_hidden_layers").asInt(), fam);
            if (e.getValue() == null) assertFalse(c.has("layer_types"), fam + ": no layer_types invented");
            else assertEquals(e.getValue(), strings(c.get("layer_types")), fam + " layer_types");
            assertEquals(List.of("1", "2"), strings(c.get("eos_token_id")), fam + ": token id lists are not per layer");
            assertEquals("float32", c.get("torch_dtype").asText(), fam);
            assertEquals("float32", c.get("dtype").asText(), fam);
            // output layer 2 is b's layer 0 (widened exactly to float32), with every tensor of that layer (experts included)
            try (Checkpoint m = Checkpoint.open(out.toString()); Checkpoint cb = Checkpoint.open(b.toString())) {
                String prefix = fam.equals("gpt2") ? "transformer.h." : "model.layers.";
                int n = 0;
                for (String name : cb.names()) {
                    if (!name.startsWith(prefix + "0.")) continue;
                    String o = prefix + "2." + name.substring((prefix + "0.").length());
                    assertArrayEquals(MergeFixtures.values(cb.tensor(name)), MergeFixtures.values(m.tensor(o)), fam + " " + o);
                    assertEquals(DType.F32, m.tensor(o).dtype(), fam + " " + o);
                    n++;
                }
                assertTrue(n >= 3, fam + ": layer 0 has tensors");
            }
        }
    }

    @Test
    void theOutputDtypeIsWrittenUnderEveryKeyTransformersReads() throws Exception {
        Path a = StackFixtures.write(dir.resolve("a"), "qwen2", 4, DType.BF16, 1);
        Path b = StackFixtures.write(dir.resolve("b"), "qwen2", 4, DType.BF16, 2);
        for (String[] c : new String[][]{{"float32", "float32", "F32"}, {"fp16", "float16", "F16"}, {"bfloat16", "bfloat16", "BF16"}}) {
            Path out = dir.resolve("out-" + c[0]);
            Path cfg = MergeFixtures.yaml(dir, "lin.yml", """
                    merge_method: linear
                    models:
                      - {model: %s, parameters: {weight: 1.0}}
                      - {model: %s, parameters: {weight: 1.0}}
                    dtype: %s
                    """.formatted(a, b, c[0]));
            MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q");
            assertEquals(0, r.exit(), r.err());
            JsonNode conf = JSON.readTree(Files.readString(out.resolve("config.json")));
            assertEquals(c[1], conf.get("torch_dtype").asText(), c[0]);
            assertEquals(c[1], conf.get("dtype").asText(), c[0] + ": transformers 5 reads 'dtype'");
            assertEquals(4, conf.get("num_hidden_layers").asInt(), "a models: merge keeps the stack");
            assertEquals(List.of(F, S, S, S), strings(conf.get("layer_types")));
            try (Checkpoint m = Checkpoint.open(out.toString())) {
                assertEquals(c[2], m.tensor("model.layers.1.self_attn.q_proj.weight").dtype().name());
            }
        }
    }

    @Test
    void aDenseThenMoeStackKeepsEachLayersOwnTensorsAndItsDenseCount() throws Exception {
        Path a = StackFixtures.write(dir.resolve("a"), "deepseek_v3", 4, DType.F32, 1);
        Path b = StackFixtures.write(dir.resolve("b"), "deepseek_v3", 4, DType.F32, 2);
        // out = [a0 (dense), a1 + b1 merged (MoE), b3 (MoE)]
        Path cfg = MergeFixtures.yaml(dir, "ds.yml", """
                merge_method: linear
                slices:
                  - sources: [{model: %1$s, layer_range: [0, 1]}]
                  - sources: [{model: %1$s, layer_range: [1, 2], parameters: {weight: 1.0}}, {model: %2$s, layer_range: [1, 2], parameters: {weight: 3.0}}]
                  - sources: [{model: %2$s, layer_range: [3, 4]}]
                parameters: {weight: 1.0}
                dtype: float32
                """.formatted(a, b));
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        JsonNode conf = JSON.readTree(Files.readString(out.resolve("config.json")));
        assertEquals(3, conf.get("num_hidden_layers").asInt());
        assertEquals(1, conf.get("first_k_dense_replace").asInt());
        try (Checkpoint m = Checkpoint.open(out.toString())) {
            assertTrue(m.contains("model.layers.0.mlp.gate_proj.weight"));
            assertFalse(m.contains("model.layers.0.mlp.experts.0.gate_proj.weight"));
            for (int l = 1; l <= 2; l++) {
                assertFalse(m.contains("model.layers." + l + ".mlp.gate_proj.weight"), "layer " + l + " is MoE");
                assertTrue(m.contains("model.layers." + l + ".mlp.experts.1.gate_proj.weight"));
                assertTrue(m.contains("model.layers." + l + ".mlp.shared_experts.gate_proj.weight"));
            }
            List<String> expectedNames = new ArrayList<>();
            try (Checkpoint ca = Checkpoint.open(a.toString())) {
                for (String n : ca.names()) if (!n.startsWith("model.layers.3.")) expectedNames.add(n);
            }
            assertEquals(expectedNames.stream().sorted().toList(), m.names().stream().sorted().toList(), "a's first three layers' names");
        }
        // the merged MoE layer: (1·a + 3·b) / 4
        String n = "model.layers.1.mlp.experts.0.gate_proj.weight";
        double[] x = MergeFixtures.values(a, n), y = MergeFixtures.values(b, n), z = MergeFixtures.values(out, n);
        for (int i = 0; i < x.length; i++) assertEquals((x[i] + 3 * y[i]) / 4, z[i], 1e-7, n + "[" + i + "]");
    }

    @Test
    void aStackDeepseeksConfigCannotDescribeOrADenseWithMoeSliceIsRefusedBeforeWriting() throws Exception {
        Path a = StackFixtures.write(dir.resolve("a"), "deepseek_v3", 3, DType.F32, 1);
        Path b = StackFixtures.write(dir.resolve("b"), "deepseek_v3", 3, DType.F32, 2);
        Path moeFirst = MergeFixtures.yaml(dir, "moe-first.yml", """
                merge_method: passthrough
                slices:
                  - sources: [{model: %1$s, layer_range: [1, 3]}]
                  - sources: [{model: %1$s, layer_range: [0, 1]}]
                """.formatted(a));
        CliFailure.mergeFails(2, moeFirst, dir.resolve("o1"), List.of(a), List.of(), "output layer 2 is a dense layer", "first_k_dense_replace",
                "order the slices");
        Path mixed = MergeFixtures.yaml(dir, "mixed.yml", """
                merge_method: linear
                slices:
                  - sources: [{model: %1$s, layer_range: [0, 2]}, {model: %2$s, layer_range: [1, 3]}]
                parameters: {weight: 1.0}
                """.formatted(a, b));
        CliFailure.mergeFails(1, mixed, dir.resolve("o2"), List.of(a, b), List.of(), "slices[0]", "layers of one kind");
    }

    @Test
    void aLayerPastTheConfigsLayerCountIsRefusedNotSkipped() throws Exception {
        // DeepSeek-V3 keeps its multi-token-prediction layer as model.layers.<num_hidden_layers>.*
        Path a = StackFixtures.write(dir.resolve("a"), "deepseek_v3", 3, DType.F32, 1);
        var conf = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(Files.readString(a.resolve("config.json")));
        conf.put("num_hidden_layers", 2).put("num_nextn_predict_layers", 1);
        Files.writeString(a.resolve("config.json"), conf.toString());
        String msg = "tensor 'model.layers.2.input_layernorm.weight' of " + a + " is in layer 2 but its config.json counts 2 decoder layers";
        CliFailure.mergeFails(1, MergeFixtures.linear(dir, "mtp.yml", a), dir.resolve("o1"), List.of(a), List.of(), msg, "num_nextn_predict_layers");
        Path slices = MergeFixtures.yaml(dir, "mtp-slices.yml", """
                merge_method: passthrough
                slices:
                  - sources: [{model: %s, layer_range: [0, 2]}]
                """.formatted(a));
        CliFailure.mergeFails(1, slices, dir.resolve("o2"), List.of(a), List.of(), msg);
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
