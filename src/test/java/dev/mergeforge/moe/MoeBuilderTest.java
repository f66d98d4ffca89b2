package dev.mergeforge.moe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.model.ArchFixtures;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.model.Zoo;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `mergeforge moe` on transformers' tiny checkpoints: the router rows against a computation here
 * (layer 0 straight from the embedding table; later layers from the residual stream, whose values
 * the reference test ties to transformers), and mixtures of identical experts that must compute
 * exactly what the base computes (a top-k mixture whose weights sum to 1 of one MLP is that MLP),
 * which proves the written layout and config load and run as Mixtral and Qwen3-MoE.
 */
class MoeBuilderTest {
    private static Parallel par;

    @TempDir Path tmp;

    @BeforeAll static void start() { par = new Parallel(2); }

    @AfterAll static void stop() { par.shutdown(); }

    private Path yaml(String body) throws IOException { return MergeFixtures.yaml(tmp, "moe.yml", body); }

    private static final List<List<String>> PROMPTS = List.of(List.of("write code", "fix a bug"), List.of("tell a story"));

    @Test
    void hiddenGatesAreTheNormalisedLastTokenResidualsOfEachExpertsPrompts() throws IOException {
        Path base = ArchFixtures.copy(ArchFixtures.dir("llama3"), tmp.resolve("base"), 0);
        Path ft = ArchFixtures.copy(ArchFixtures.dir("llama3"), tmp.resolve("ft"), 0.05);
        Path cfg = yaml("""
                base_model: %s
                gate_mode: hidden
                experts:
                  - source_model: %s
                    positive_prompts: ["write code", "fix a bug"]
                  - source_model: %s
                    positive_prompts: ["tell a story"]
                    negative_prompts: ["write code"]
                """.formatted(base, base, ft));
        MergeFixtures.Run r = MergeFixtures.cli("moe", cfg.toString(), tmp.resolve("out").toString(), "--threads", "2");
        assertEquals(0, r.exit(), r.err());
        try (LlamaModel m = LlamaModel.open(base, par, false); TextTokenizer tok = TextTokenizer.open(base);
             SafetensorsFile out = SafetensorsFile.open(tmp.resolve("out/model.safetensors"));
             SafetensorsFile ftw = SafetensorsFile.open(ft.resolve("model.safetensors"));
             SafetensorsFile bw = SafetensorsFile.open(base.resolve("model.safetensors"))) {
            int hd = m.config().hiddenSize();
            float[] embed = Zoo.floats(bw.tensor("model.embed_tokens.weight"));
            for (int l = 0; l < 2; l++) {
                float[] router = Zoo.floats(out.tensor("model.layers." + l + ".block_sparse_moe.gate.weight"));
                assertEquals(2 * hd, router.length);
                double[] e0 = side(m, tok, PROMPTS.get(0), l, embed), e1 = side(m, tok, PROMPTS.get(1), l, embed), neg = side(m, tok, List.of("write code"), l, embed);
                for (int j = 0; j < hd; j++) e1[j] -= neg[j];
                double n0 = norm(e0), n1 = norm(e1);
                for (int j = 0; j < hd; j++) {
                    assertEquals(e0[j] / n0, router[j], 1e-6, "layer " + l + " expert 0");
                    assertEquals(e1[j] / n1, router[hd + j], 1e-6, "layer " + l + " expert 1");
                }
            }
            // expert 1's MLP is the fine-tune's, bit for bit; attention is the base's
            assertEquals(List.of(Zoo.floats(ftw.tensor("model.layers.1.mlp.up_proj.weight"))).getFirst().length,
                    Zoo.floats(out.tensor("model.layers.1.block_sparse_moe.experts.1.w3.weight")).length);
            float[] w3 = Zoo.floats(out.tensor("model.layers.1.block_sparse_moe.experts.1.w3.weight")), up = Zoo.floats(ftw.tensor("model.layers.1.mlp.up_proj.weight"));
            for (int i = 0; i < up.length; i++) assertEquals(up[i], w3[i], 0f);
            float[] q = Zoo.floats(out.tensor("model.layers.0.self_attn.q_proj.weight")), bq = Zoo.floats(bw.tensor("model.layers.0.self_attn.q_proj.weight"));
            for (int i = 0; i < q.length; i++) assertEquals(bq[i], q[i], 0f);
            assertTrue(!out.names().contains("model.layers.0.mlp.up_proj.weight"));
        }
    }

    /** Mean over prompts of layer l's input at the last token: the embedding row for layer 0, the residual stream after l−1 otherwise. */
    private static double[] side(LlamaModel m, TextTokenizer tok, List<String> prompts, int l, float[] embed) {
        int hd = m.config().hiddenSize();
        double[] acc = new double[hd];
        for (String p : prompts) {
            int[] t = tok.encode(p);
            int bos = m.bosTokenId();
            int[] ids = new int[t.length + (bos >= 0 ? 1 : 0)];
            if (bos >= 0) ids[0] = bos;
            System.arraycopy(t, 0, ids, ids.length - t.length, t.length);
            float[][] after = new float[1][];
            if (l > 0) m.hiddenStates(new int[][] {ids}, (n, x, o, k, w) -> { }, (layer, b, h) -> { if (layer == l - 1) after[0] = h.clone(); });
            int last = ids.length - 1;
            for (int j = 0; j < hd; j++) acc[j] += l == 0 ? embed[ids[last] * hd + j] : after[0][last * hd + j];
        }
        for (int j = 0; j < hd; j++) acc[j] /= prompts.size();
        return acc;
    }

    private static double norm(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        return Math.sqrt(s);
    }

    @Test
    void identicalExpertsReproduceTheBaseAsMixtralAndQwen3Moe() throws IOException {
        // (not Mistral: like mergekit, a Mixtral output has no sliding window, so a windowed base computes differently)
        for (String family : List.of("llama3", "qwen3")) {
            Path base = ArchFixtures.copy(ArchFixtures.dir(family), tmp.resolve(family), 0);
            Path cfg = yaml("""
                    base_model: %1$s
                    gate_mode: cheap_embed
                    dtype: float32
                    experts_per_token: 2
                    experts:
                      - {source_model: %1$s, positive_prompts: ["one"]}
                      - {source_model: %1$s, positive_prompts: ["two"]}
                      - {source_model: %1$s, positive_prompts: ["three"], residual_scale: 1.0}
                    """.formatted(base));
            Path out = tmp.resolve(family + "-moe");
            MergeFixtures.Run r = MergeFixtures.cli("moe", cfg.toString(), out.toString(), "--threads", "2");
            assertEquals(0, r.exit(), r.err());
            try (SafetensorsFile ref = SafetensorsFile.open(ArchFixtures.dir(family).resolve("reference.safetensors"));
                 LlamaModel moe = LlamaModel.open(out, par, false)) {
                assertEquals(family.equals("qwen3") ? "qwen3_moe" : "mixtral", moe.config().arch().family());
                assertEquals(3, moe.config().variant().experts());
                assertReproducesTheBase(moe, ref, family + ": the mixture of one MLP is that MLP");
            }
        }
    }

    /** The mixture's logits equal the base's transformers logits to 1e-4 of their largest magnitude. */
    private static void assertReproducesTheBase(LlamaModel moe, SafetensorsFile ref, String what) {
        float[] expect = Zoo.floats(ref.tensor("logits"));
        float[][] got = moe.logits(ArchFixtures.inputIds(ref));
        int n = got[0].length;
        double worst = 0, max = 0;
        for (int b = 0; b < got.length; b++) for (int i = 0; i < n; i++) {
            worst = Math.max(worst, Math.abs(got[b][i] - expect[b * n + i]));
            max = Math.max(max, Math.abs(expect[b * n + i]));
        }
        assertTrue(worst <= 1e-4 * max, what + " (|diff| " + worst + ")");
    }

    @Test
    void identicalExpertsAndASilencedSharedExpertReproduceTheBaseAsQwen2Moe() throws IOException {
        // llama has no q/k/v biases (zeros are written, as mergekit-moe does); qwen2 has its own
        for (String family : List.of("llama3", "qwen2")) {
            Path base = ArchFixtures.copy(ArchFixtures.dir(family), tmp.resolve("q2-" + family), 0);
            Path cfg = yaml("""
                    base_model: %1$s
                    gate_mode: cheap_embed
                    dtype: float32
                    experts_per_token: 2
                    shared_experts:
                      - {source_model: %1$s, positive_prompts: ["four"], residual_scale: 0.0}
                    experts:
                      - {source_model: %1$s, positive_prompts: ["one"]}
                      - {source_model: %1$s, positive_prompts: ["two"]}
                      - {source_model: %1$s, positive_prompts: ["four"]}
                    """.formatted(base));
            Path out = tmp.resolve(family + "-q2moe");
            MergeFixtures.Run r = MergeFixtures.cli("moe", cfg.toString(), out.toString(), "--threads", "2");
            assertEquals(0, r.exit(), r.err());
            JsonNode conf = new ObjectMapper().readTree(out.resolve("config.json").toFile());
            assertEquals("Qwen2MoeForCausalLM", conf.get("architectures").get(0).asText());
            assertEquals("qwen2_moe", conf.get("model_type").asText());
            int inter = conf.get("intermediate_size").asInt();
            assertEquals(inter, conf.get("shared_expert_intermediate_size").asInt());
            assertEquals(inter, conf.get("moe_intermediate_size").asInt());
            assertEquals(3, conf.get("num_experts").asInt());
            assertTrue(conf.get("norm_topk_prob").asBoolean() && !conf.get("use_sliding_window").asBoolean() && conf.get("sliding_window").isNull());
            try (SafetensorsFile ref = SafetensorsFile.open(ArchFixtures.dir(family).resolve("reference.safetensors"));
                 SafetensorsFile st = SafetensorsFile.open(out.resolve("model.safetensors"));
                 SafetensorsFile bw = SafetensorsFile.open(base.resolve("model.safetensors"));
                 LlamaModel moe = LlamaModel.open(out, par, false)) {
                assertEquals("qwen2_moe", moe.config().arch().family());
                assertEquals(inter, moe.config().variant().sharedIntermediate());
                String p = "model.layers.1.";
                float[] down = Zoo.floats(st.tensor(p + "mlp.shared_expert.down_proj.weight"));
                for (float v : down) assertEquals(0f, Math.abs(v), 0f, "residual_scale 0 zeroes the shared expert's down projection");
                assertArrayEquals(Zoo.floats(bw.tensor(p + "mlp.up_proj.weight")), Zoo.floats(st.tensor(p + "mlp.shared_expert.up_proj.weight")));
                // the shared gate is made from its prompts like a router row: expert 2 has the same prompts
                float[] gate = Zoo.floats(st.tensor(p + "mlp.shared_expert_gate.weight")), router = Zoo.floats(st.tensor(p + "mlp.gate.weight"));
                assertEquals(1, st.tensor(p + "mlp.shared_expert_gate.weight").shape().dim(0), "one row");
                for (int j = 0; j < gate.length; j++) assertEquals(router[2 * gate.length + j], gate[j], 0f);
                for (String b : List.of("q", "k", "v")) {
                    String n = p + "self_attn." + b + "_proj.bias";
                    float[] bias = Zoo.floats(st.tensor(n));
                    assertEquals(st.tensor(p + "self_attn." + b + "_proj.weight").shape().dim(0), bias.length, n);
                    if (family.equals("llama3")) for (float v : bias) assertEquals(0f, v, 0f, n + " is zeros where the base has none");
                    else assertArrayEquals(Zoo.floats(bw.tensor(n)), bias, n + " is the base's");
                }
                assertReproducesTheBase(moe, ref, family + ": routed copies of one MLP plus a silenced shared expert are that MLP");
                // calibration sees the shared expert: its gate/up and its one-row gate read every token, like the router
                dev.mergeforge.calib.ActMeanStats stats = new dev.mergeforge.calib.ActMeanStats();
                moe.hiddenStates(ArchFixtures.inputIds(ref), stats);
                float[] routerIn = stats.means().get(p + "mlp.gate.weight");
                for (String w : List.of("shared_expert.gate_proj", "shared_expert.up_proj", "shared_expert_gate")) {
                    assertArrayEquals(routerIn, stats.means().get(p + "mlp." + w + ".weight"), w);
                    assertEquals(stats.tokens(p + "mlp.gate.weight"), stats.tokens(p + "mlp." + w + ".weight"), w);
                }
                assertEquals(inter, stats.means().get(p + "mlp.shared_expert.down_proj.weight").length);
            }
        }
    }

    @Test
    void cheapEmbedAndRandomGates() throws IOException {
        Path base = ArchFixtures.copy(ArchFixtures.dir("qwen3"), tmp.resolve("base"), 0);
        String experts = """
                experts:
                  - {source_model: %1$s, positive_prompts: ["ab", "c"]}
                  - {source_model: %1$s, positive_prompts: ["xyz"]}
                """.formatted(base);
        assertEquals(0, MergeFixtures.cli("moe", yaml("base_model: " + base + "\ngate_mode: cheap_embed\n" + experts).toString(),
                tmp.resolve("cheap").toString()).exit());
        try (SafetensorsFile out = SafetensorsFile.open(tmp.resolve("cheap/model.safetensors"));
             SafetensorsFile bw = SafetensorsFile.open(base.resolve("model.safetensors"));
             TextTokenizer tok = TextTokenizer.open(base)) {
            float[] embed = Zoo.floats(bw.tensor("model.embed_tokens.weight"));
            int hd = 64;
            float[] r0 = Zoo.floats(out.tensor("model.layers.0.mlp.gate.weight")), r1 = Zoo.floats(out.tensor("model.layers.1.mlp.gate.weight"));
            // expert 0: Σ of the embeddings of every token of "ab" and "c" (Qwen3 has no BOS), normalised; the same for every layer
            double[] s = new double[hd];
            for (String p : List.of("ab", "c")) for (int id : tok.encode(p)) for (int j = 0; j < hd; j++) s[j] += embed[id * hd + j];
            double n = norm(s);
            for (int j = 0; j < hd; j++) {
                assertEquals(s[j] / n, r0[j], 1e-6);
                assertEquals(r0[j], r1[j], 0f);
            }
        }
        Path random = yaml("base_model: " + base + "\ngate_mode: random\n" + experts);
        assertEquals(0, MergeFixtures.cli("moe", random.toString(), tmp.resolve("r1").toString(), "--seed", "5").exit());
        assertEquals(0, MergeFixtures.cli("moe", random.toString(), tmp.resolve("r2").toString(), "--seed", "5").exit());
        try (SafetensorsFile a = SafetensorsFile.open(tmp.resolve("r1/model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(tmp.resolve("r2/model.safetensors"))) {
            float[] x = Zoo.floats(a.tensor("model.layers.0.mlp.gate.weight")), y = Zoo.floats(b.tensor("model.layers.0.mlp.gate.weight"));
            for (int i = 0; i < x.length; i++) assertEquals(x[i], y[i], 0f, "the seed fixes the random router");
            assertNotEquals(x[0], Zoo.floats(a.tensor("model.layers.1.mlp.gate.weight"))[0], "each layer draws its own");
        }
    }

    @Test
    void unsupportedBasesMixedFamiliesAndBadKeysAreOneLineErrorsAndWriteNothing() throws IOException {
        Path gpt2 = ArchFixtures.copy(ArchFixtures.dir("gpt2"), tmp.resolve("gpt2"), 0);
        Path llama = ArchFixtures.copy(ArchFixtures.dir("llama3"), tmp.resolve("llama"), 0);
        Path qwen = ArchFixtures.copy(ArchFixtures.dir("qwen3"), tmp.resolve("qwen"), 0);
        String[][] cases = {
                {"base_model: %s\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n  - {source_model: %s, positive_prompts: [b]}\n".formatted(gpt2, gpt2, gpt2),
                        "from a gpt2 base (supported: llama or mistral -> mixtral, qwen3 -> qwen3_moe, llama, mistral or qwen2 with one shared expert -> qwen2_moe)"},
                {"base_model: %s\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n  - {source_model: %s, positive_prompts: [b]}\n".formatted(llama, llama, qwen),
                        "experts[1] " + qwen + " is not a llama model like the base"},
                {"base_model: %s\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n  - {source_model: %s, positive_prompts: [a]}\n".formatted(llama, llama, llama),
                        "every expert has the same prompts"},
                {"base_model: %s\nexperts:\n  - {source_model: %s, positive_prompts: [a], noise_scale: 0.1}\n".formatted(llama, llama),
                        "experts[0].noise_scale"},
                {"base_model: %s\nexperts_per_token: 3\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n".formatted(llama, llama),
                        "experts_per_token 3 exceeds the 1 experts"},
                {"base_model: %s\nshared_experts: [{source_model: %s}]\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n".formatted(llama, llama, llama),
                        "shared_experts[0].positive_prompts: gate_mode hidden needs at least one prompt per expert (a shared expert without prompts is "
                                + "DeepSeek-MoE's layout, which mergeforge does not build)"},
                {"base_model: %s\narchitecture: qwen2_moe\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n  - {source_model: %s, positive_prompts: [b]}\n"
                        .formatted(llama, llama, llama),
                        "architecture 'qwen2_moe' needs exactly one entry in shared_experts (its shared expert)"},
                {"base_model: %s\nshared_experts: [{source_model: %s, positive_prompts: [c]}]\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n  - {source_model: %s, positive_prompts: [b]}\n"
                        .formatted(qwen, qwen, qwen, qwen),
                        "cannot build a mixture with a shared expert from a qwen3 base"},
                {"base_model: %s\nshared_experts: [{source_model: %s, positive_prompts: [c]}, {source_model: %s, positive_prompts: [d]}]\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n"
                        .formatted(llama, llama, llama, llama),
                        "shared_experts: the Qwen2-MoE layout has exactly one shared expert, got 2"},
                {"base_model: %s\nshared_experts: [{source_model: %s, positive_prompts: [c]}]\nexperts:\n  - {source_model: %s, positive_prompts: [a]}\n  - {source_model: %s, positive_prompts: [b]}\n"
                        .formatted(llama, qwen, llama, llama),
                        "shared_experts[0] " + qwen + " is not a llama model like the base"},
        };
        for (String[] c : cases) {
            Path cfg = yaml(c[0]);
            MergeFixtures.Run r = MergeFixtures.cli("moe", cfg.toString(), tmp.resolve("never").toString());
            assertEquals(2, r.exit(), c[1] + ": " + r.err());
            assertTrue(r.err().contains(c[1]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(Files.notExists(tmp.resolve("never")));
        }
    }
}
