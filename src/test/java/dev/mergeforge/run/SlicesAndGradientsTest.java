package dev.mergeforge.run;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Layer stacking with slices and parameter gradients, end to end through the CLI. */
class SlicesAndGradientsTest {
    @TempDir Path dir;

    @Test
    void passthroughSlicesStackLayersFromTwoModels() throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, dir.resolve("m"));
        Path a = f.fineTunes().get(0), b = f.fineTunes().get(1);
        Path cfg = MergeFixtures.yaml(dir, "frank.yml", """
                merge_method: passthrough
                slices:
                  - sources:
                      - model: %1$s
                        layer_range: [0, 2]
                  - sources:
                      - model: %2$s
                        layer_range: [1, 3]
                dtype: bfloat16
                """.formatted(a, b));
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        try (Checkpoint ca = Checkpoint.open(a.toString()); Checkpoint cb = Checkpoint.open(b.toString()); Checkpoint m = Checkpoint.open(out.toString())) {
            assertEquals(4, m.config().get("num_hidden_layers").asInt());
            String[][] pairs = {
                    {"model.layers.0.mlp.up_proj.weight", "a", "model.layers.0.mlp.up_proj.weight"},
                    {"model.layers.1.self_attn.q_proj.weight", "a", "model.layers.1.self_attn.q_proj.weight"},
                    {"model.layers.2.mlp.down_proj.weight", "b", "model.layers.1.mlp.down_proj.weight"},
                    {"model.layers.3.input_layernorm.weight", "b", "model.layers.2.input_layernorm.weight"},
                    {"model.embed_tokens.weight", "a", "model.embed_tokens.weight"},
                    {"model.norm.weight", "b", "model.norm.weight"},
                    {"lm_head.weight", "b", "lm_head.weight"}};
            for (String[] p : pairs) {
                Checkpoint src = p[1].equals("a") ? ca : cb;
                assertEquals(-1, m.tensor(p[0]).data().mismatch(src.tensor(p[2]).data()), p[0] + " <- " + p[1] + ":" + p[2]);
            }
            assertFalse(m.contains("model.layers.4.mlp.up_proj.weight"));
            assertEquals(ca.names().size() + 9, m.names().size(), "4 layers out of 3-layer inputs: one layer of 9 tensors more");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "post_weights_t: 1", "post_weights_t: 0"})
    void weightGradientsInterpolateAcrossLayersAndPrePostWeightsUseTheEnds(String postT) throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.F32, 2, 1, dir.resolve("m"));
        Path a = f.fineTunes().get(0), b = f.fineTunes().get(1);
        Path cfg = MergeFixtures.yaml(dir, "grad.yml", postT + """

                merge_method: linear
                models:
                  - model: %1$s
                    parameters:
                      weight: [0.0, 1.0]
                  - model: %2$s
                    parameters:
                      weight:
                        - filter: mlp
                          value: 2.0
                        - value: 1.0
                dtype: float32
                """.formatted(a, b));
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        // 3 layers: t = layer / 2; embeddings t = 0; final norm and lm_head at t = 0 (mergekit 0.1.2+) or 1 (post_weights_t: 1)
        double post = postT.endsWith("1") ? 1.0 : 0.0;
        Object[][] cases = {
                {"model.layers.0.self_attn.k_proj.weight", 0.0, 1.0},
                {"model.layers.1.self_attn.k_proj.weight", 0.5, 1.0},
                {"model.layers.1.mlp.gate_proj.weight", 0.5, 2.0},
                {"model.layers.2.mlp.up_proj.weight", 1.0, 2.0},
                {"model.embed_tokens.weight", 0.0, 1.0},
                {"model.norm.weight", post, 1.0},
                {"lm_head.weight", post, 1.0}};
        for (Object[] c : cases) {
            String n = (String) c[0];
            double wa = (double) c[1], wb = (double) c[2];
            double[] x = MergeFixtures.values(a, n), y = MergeFixtures.values(b, n), z = MergeFixtures.values(out, n);
            for (int i = 0; i < x.length; i++) {
                double ref = (wa * x[i] + wb * y[i]) / (wa + wb);
                assertEquals(ref, z[i], 1e-6 * Math.max(1, Math.abs(ref)), n + "[" + i + "]");
            }
        }
    }

    @Test
    void inSlicesConfigsPostWeightsTakeTheLastSliceAtPostWeightsT() throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.F32, 2, 1, dir.resolve("m"));
        Path a = f.fineTunes().get(0), b = f.fineTunes().get(1);
        for (String postT : new String[]{"", "post_weights_t: 1\n"}) {
            Path cfg = MergeFixtures.yaml(dir, "s.yml", postT + """
                    merge_method: linear
                    slices:
                      - sources:
                          - {model: %1$s, layer_range: [0, 3], parameters: {weight: 1.0}}
                          - {model: %2$s, layer_range: [0, 3], parameters: {weight: [0.2, 0.8]}}
                    """.formatted(a, b));
            Path out = dir.resolve("out" + postT.length());
            MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q");
            assertEquals(0, r.exit(), r.err());
            double wb = postT.isEmpty() ? 0.2 : 0.8;
            for (String n : new String[]{"lm_head.weight", "model.norm.weight"}) {
                double[] x = MergeFixtures.values(a, n), y = MergeFixtures.values(b, n), z = MergeFixtures.values(out, n);
                for (int i = 0; i < x.length; i++) {
                    double ref = (x[i] + wb * y[i]) / (1 + wb);
                    assertEquals(ref, z[i], 1e-6 * Math.max(1, Math.abs(ref)), postT + n + "[" + i + "]");
                }
            }
        }
    }
}
