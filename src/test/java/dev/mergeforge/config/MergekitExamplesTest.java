package dev.mergeforge.config;

import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Configs shaped like the ones in mergekit's examples/ directory (our own models and numbers), read
 * end to end: every field and the values a merge would see per tensor.
 */
class MergekitExamplesTest {
    static final String ATTN = "model.layers.%d.self_attn.k_proj.weight", MLP = "model.layers.%d.mlp.gate_proj.weight";

    @Test
    void weightedLinearOfThreeModels() {
        MergeConfig c = ConfigReader.parse("""
                models:
                  - model: ./ft/alpha
                    parameters:
                      weight: 0.6
                  - model: ./ft/beta
                    parameters:
                      weight: 0.15
                  - model: ./ft/gamma
                    parameters:
                      weight: 0.25
                merge_method: linear
                dtype: bfloat16
                """, "linear.yml");
        assertEquals(List.of("./ft/alpha", "./ft/beta", "./ft/gamma"), c.models().stream().map(ModelEntry::model).toList());
        assertEquals(DType.BF16, c.dtype());
        assertNull(c.baseModel());
        double[] w = {0.6, 0.15, 0.25};
        for (int i = 0; i < 3; i++) assertEquals(w[i], c.modelParams(i, "model.embed_tokens.weight", 0).number("weight"));
        assertTrue(c.globalParams("model.embed_tokens.weight", 0).flag("normalize", false));
        assertEquals("linear", c.raw().get("merge_method"));
        assertFalse(c.hasSlices());
    }

    @Test
    void tiesWithGradientsAndFilters() {
        MergeConfig c = TestSpecs.parse("""
                models:
                  - model: /m/one
                    parameters:
                      density: [0.9, 0.6, 0.2]
                      weight: 0.8
                  - model: /m/two
                    parameters:
                      density: 0.45
                      weight: [0.1, 0.4, 0.6, 0.9]
                  - model: /m/three
                    parameters:
                      density: 0.3
                      weight:
                        - filter: mlp
                          value: 0.6
                        - value: 0.05
                merge_method: ties
                base_model: /m/base
                parameters:
                  normalize: true
                  int8_mask: true
                dtype: float16
                """);
        int layers = 11;
        for (int l = 0; l < layers; l++) {
            double t = ConfigReader.layerT(ATTN.formatted(l), l, layers);
            assertEquals(SettingTest.handGradient(new double[] {0.9, 0.6, 0.2}, t), c.modelParams(0, ATTN.formatted(l), t).number("density"), 1e-12);
            assertEquals(SettingTest.handGradient(new double[] {0.1, 0.4, 0.6, 0.9}, t), c.modelParams(1, ATTN.formatted(l), t).number("weight"), 1e-12);
            assertEquals(0.6, c.modelParams(2, MLP.formatted(l), t).number("weight"));
            assertEquals(0.05, c.modelParams(2, ATTN.formatted(l), t).number("weight"));
        }
        assertTrue(c.globalParams("lm_head.weight", 1).flag("int8_mask", false));
        assertEquals(1.0, c.globalParams("lm_head.weight", 1).number("lambda"));
        assertEquals("/m/base", c.baseModel());
        assertEquals(-1, c.baseIndex());
        assertEquals(DType.F16, c.dtype());
    }

    @Test
    void tiesOfTwoDomainModelsWithoutNormalize() {
        MergeConfig c = TestSpecs.parse("""
                models:
                  - model: org/instruct-7b
                    parameters: {density: 0.6, weight: 0.4}
                  - model: lab/domain-7b
                    parameters: {density: 0.6, weight: 0.6}
                merge_method: ties
                base_model: org/base-7b
                parameters:
                  normalize: false
                  int8_mask: true
                dtype: bfloat16
                """);
        assertFalse(c.globalParams("x", 0).flag("normalize", true));
        assertEquals(0.4, c.modelParams(0, "x", 0).number("weight"));
        assertEquals(0.6, c.modelParams(1, "x", 0).number("density"));
    }

    @Test
    void gradientSlerpSlicesAndModelsSyntaxAgree() {
        String params = """
                merge_method: slerp
                base_model: ./chat
                parameters:
                  t:
                    - filter: self_attn
                      value: [0, 0.4, 0.2, 0.8, 1]
                    - filter: mlp
                      value: [1, 0.6, 0.8, 0.2, 0]
                    - value: 0.35
                dtype: float16
                """;
        MergeConfig slices = TestSpecs.parse("""
                slices:
                  - sources:
                      - model: ./chat
                        layer_range: [0, 32]
                      - model: ./code
                        layer_range: [0, 32]
                """ + params);
        MergeConfig models = TestSpecs.parse("""
                models:
                  - model: ./chat
                  - model: ./code
                """ + params);
        assertEquals(32, slices.numOutputLayers());
        for (int l = 0; l < 32; l++) {
            SliceLayer sl = slices.sliceLayer(l);
            double tModels = ConfigReader.layerT(ATTN.formatted(l), l, 32);
            assertEquals(tModels, sl.t(), 1e-15);
            for (String name : List.of(ATTN.formatted(l), MLP.formatted(l), "model.layers." + l + ".post_attention_layernorm.weight")) {
                assertEquals(models.globalParams(name, tModels).number("t"), slices.sliceGlobalParams(0, name, sl.t()).number("t"), 1e-15);
            }
        }
        // mlp filter at layer 31 (t = 1) is the last point, 0; attention at layer 0 is 0 too; others 0.35
        assertEquals(0.0, models.globalParams(MLP.formatted(31), 1).number("t"));
        assertEquals(0.35, models.globalParams("model.norm.weight", 1).number("t"));
        assertEquals(0, models.baseIndex());
    }

    @Test
    void passthroughFrankenmergeOfOverlappingRanges() {
        MergeConfig c = TestSpecs.parse("""
                slices:
                  - sources:
                    - model: ./left
                      layer_range: [0, 20]
                  - sources:
                    - model: ./right
                      layer_range: [12, 32]
                merge_method: passthrough
                dtype: bfloat16
                """);
        assertEquals(40, c.numOutputLayers());
        assertEquals(List.of(19), c.sliceLayer(19).sourceLayers());
        assertEquals(List.of(12), c.sliceLayer(20).sourceLayers());
        assertEquals(List.of(31), c.sliceLayer(39).sourceLayers());
        assertEquals("./right", c.slices().get(c.sliceLayer(20).slice()).sources().getFirst().model());
        assertEquals(1.0, c.sliceSourceParams(1, 0, "model.layers.12.mlp.up_proj.weight", 0).number("scale"));
        assertNull(c.sliceBaseModel(0));
    }

    @Test
    void fusionWithBaseListedAmongModels() {
        MergeConfig c = TestSpecs.parse("""
                models:
                  - model: ./a
                  - model: ./b
                merge_method: arcee_fusion
                base_model: ./a
                dtype: bfloat16
                """);
        assertEquals(0, c.baseIndex());
        assertEquals(2, c.models().size());
        assertTrue(c.modelParams(1, "x", 0).values().isEmpty());
    }
}
