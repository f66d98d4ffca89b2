package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.Params;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Which value a method sees for one tensor: mergekit's precedence, gradients by t, filters, defaults. */
class ParamResolutionTest {
    static final String Q = "model.layers.%d.self_attn.q_proj.weight";
    static final String UP = "model.layers.%d.mlp.up_proj.weight";

    @Test
    void modelParamsOverrideTopLevelWhichOverridesDefaults() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                parameters:
                  density: 0.8
                  weight: 0.25
                  lambda: 1.5
                models:
                  - model: a
                    parameters:
                      density: 0.3
                  - model: b
                """);
        Params a = c.modelParams(0, Q.formatted(0), 0), b = c.modelParams(1, Q.formatted(0), 0);
        assertEquals(0.3, a.number("density"));
        assertEquals(0.25, a.number("weight"));      // from the top level
        assertEquals(0.8, b.number("density"));      // from the top level
        assertEquals(0.25, b.number("weight"));
        Params g = c.globalParams(Q.formatted(0), 0);
        assertEquals(1.5, g.number("lambda"));
        assertTrue(g.flag("normalize", false));      // default true
        assertFalse(g.flag("int8_mask", true));      // default false
        assertEquals(0.8, c.modelParams(1, "model.norm.weight", 1).number("density", -1));
    }

    @Test
    void defaultsFillMissingPerModelParamsAndRequiredOnesStayAbsent() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                models:
                  - model: base
                  - model: a
                    parameters: {weight: 1}
                """);
        Params base = c.modelParams(0, Q.formatted(0), 0);
        assertEquals(1.0, base.number("density"));   // default
        assertFalse(base.has("weight"));             // base needs no weight (mergekit: not required for the base)
        ConfigException e = assertThrows(ConfigException.class, () -> base.number("weight"));
        assertTrue(e.getMessage().contains("models[0] 'base'"), e.getMessage());
        assertEquals(0, c.baseIndex());
    }

    @Test
    void gradientsFollowLayerPositionWithHandFormula() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters:
                      density: [1, 0.7, 0.1]
                      weight: 1.0
                  - model: b
                    parameters:
                      density: 0.5
                      weight: [0, 0.3, 0.7, 1]
                """);
        int layers = 7;
        double[] dens = {1, 0.7, 0.1}, w = {0, 0.3, 0.7, 1};
        for (int l = 0; l < layers; l++) {
            double t = ConfigReader.layerT(Q.formatted(l), l, layers);
            assertEquals(l / 6.0, t, 1e-15);
            assertEquals(SettingTest.handGradient(dens, t), c.modelParams(0, Q.formatted(l), t).number("density"), 1e-12, "layer " + l);
            assertEquals(SettingTest.handGradient(w, t), c.modelParams(1, Q.formatted(l), t).number("weight"), 1e-12, "layer " + l);
            assertEquals(0.5, c.modelParams(1, Q.formatted(l), t).number("density"));
        }
        // embeddings, final norm and lm_head at t = 0 (mergekit 0.1.2+); post weights at t = 1 with post_weights_t: 1 (mergekit <= 0.1.1)
        assertEquals(1.0, c.modelParams(0, "model.embed_tokens.weight", ConfigReader.layerT("model.embed_tokens.weight", -1, layers)).number("density"));
        assertEquals(1.0, c.modelParams(0, "lm_head.weight", ConfigReader.layerT("lm_head.weight", -1, layers)).number("density"), 1e-12);
        assertEquals(0.0, c.modelParams(1, "model.norm.weight", ConfigReader.layerT("model.norm.weight", -1, layers)).number("weight"), 1e-12);
        assertEquals(0.1, c.modelParams(0, "lm_head.weight", ConfigReader.layerT("lm_head.weight", -1, layers, 1.0)).number("density"), 1e-12);
        assertEquals(1.0, c.modelParams(1, "model.norm.weight", ConfigReader.layerT("model.norm.weight", -1, layers, 1.0)).number("weight"), 1e-12);
        assertEquals(1.0, c.modelParams(0, "model.embed_tokens.weight", ConfigReader.layerT("model.embed_tokens.weight", -1, layers, 1.0)).number("density"));
        // a config.json counting no layers still places its pre and post weights (it used to stop on an internal error)
        assertEquals(0.0, ConfigReader.layerT(-1, true, 0, 1.0));
        assertEquals(1.0, ConfigReader.layerT(-1, false, 0, 1.0));
        assertEquals(0.0, ConfigReader.layerT(-1, false, 0, 0.0));
        assertThrows(IllegalArgumentException.class, () -> ConfigReader.layerT(0, false, 0, 0.0));
    }

    @Test
    void filterListFallsThroughToTheNextLevelWhenNothingMatches() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                parameters:
                  weight:
                    - filter: mlp
                      value: 0.9
                    - value: 0.1
                models:
                  - model: a
                    parameters:
                      weight:
                        - filter: self_attn
                          value: 0.5
                """);
        assertEquals(0.5, c.modelParams(0, Q.formatted(2), 0.5).number("weight"));   // model level matches
        assertEquals(0.9, c.modelParams(0, UP.formatted(2), 0.5).number("weight"));   // no model match -> top-level filter
        assertEquals(0.1, c.modelParams(0, "model.norm.weight", 1).number("weight")); // top-level fallback entry
    }

    @Test
    void filtersTakeFirstMatchInFileOrderAndStarMatchesEverything() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters:
                      weight:
                        - filter: proj
                          value: 1
                        - filter: mlp
                          value: 2
                        - filter: "*"
                          value: 3
                        - value: 4
                """);
        assertEquals(1.0, c.modelParams(0, UP.formatted(0), 0).number("weight"));     // proj before mlp
        assertEquals(3.0, c.modelParams(0, "model.norm.weight", 1).number("weight")); // "*" before the fallback
    }

    @Test
    void gradientInsideAFilterUsesT() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: slerp
                base_model: a
                models:
                  - model: a
                  - model: b
                parameters:
                  t:
                    - filter: self_attn
                      value: [0, 0.5, 0.3, 0.7, 1]
                    - filter: mlp
                      value: [1, 0.5, 0.7, 0.3, 0]
                    - value: 0.5
                """);
        double[] attn = {0, 0.5, 0.3, 0.7, 1}, mlp = {1, 0.5, 0.7, 0.3, 0};
        int layers = 9;
        for (int l = 0; l < layers; l++) {
            double t = ConfigReader.layerT(Q.formatted(l), l, layers);
            assertEquals(SettingTest.handGradient(attn, t), c.globalParams(Q.formatted(l), t).number("t"), 1e-12);
            assertEquals(SettingTest.handGradient(mlp, t), c.globalParams(UP.formatted(l), t).number("t"), 1e-12);
            assertEquals(0.5, c.globalParams("model.layers." + l + ".input_layernorm.weight", t).number("t"));
        }
    }

    @Test
    void flagsAcceptZeroOneAndBooleanGradientsFollowPythonTruthiness() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                parameters:
                  normalize: 0
                  int8_mask: [false, true]
                models:
                  - model: a
                    parameters: {weight: 1}
                """);
        assertFalse(c.globalParams(Q.formatted(0), 0).flag("normalize", true));
        // mergekit interpolates [false, true] as numbers: 0 at t=0, 0.5 (truthy) at t=0.5
        assertFalse(c.globalParams(Q.formatted(0), 0).flag("int8_mask", true));
        assertTrue(c.globalParams(Q.formatted(0), 0.5).flag("int8_mask", false));
        assertTrue(c.globalParams(Q.formatted(0), 1).flag("int8_mask", false));
    }

    @Test
    void quotedNumbersAndStringParamsAreRead() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: dare_linear
                base_model: base
                parameters:
                  rescale: density
                models:
                  - model: a
                    parameters: {weight: "0.5", density: [0.2, "0.4"]}
                """);
        assertEquals(0.5, c.modelParams(0, Q.formatted(0), 0).number("weight"));
        assertEquals(0.3, c.modelParams(0, Q.formatted(0), 0.5).number("density"), 1e-12);
        assertEquals("density", c.globalParams(Q.formatted(0), 0).string("rescale", null));
        MergeConfig d = TestSpecs.parse("""
                merge_method: dare_linear
                base_model: base
                models: [{model: a, parameters: {weight: 1}}]
                """);
        assertEquals("l1", d.globalParams(Q.formatted(0), 0).string("rescale", null));
    }

    @Test
    void exponentNumbersReadLikeMergekitWithOrWithoutQuotes() {
        // PyYAML reads 1e-1 as a string that pydantic turns into 0.1; SnakeYAML reads a float: same value either way
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters: {weight: 1e-1, density: "2.5e-1"}
                """);
        assertEquals(0.1, c.modelParams(0, Q.formatted(0), 0).number("weight"), 1e-15);
        assertEquals(0.25, c.modelParams(0, Q.formatted(0), 0).number("density"), 1e-15);
    }

    @Test
    void requiredValueLeftUnsetByFiltersFailsAtMergeTimeNamingTheTensor() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: slerp
                base_model: a
                models: [{model: a}, {model: b}]
                parameters:
                  t: [{filter: mlp, value: 0.3}]
                """);
        assertEquals(0.3, c.globalParams(UP.formatted(1), 0.5).number("t"));
        ConfigException e = assertThrows(ConfigException.class, () -> c.globalParams(Q.formatted(1), 0.5).number("t"));
        assertEquals("tensor 'model.layers.1.self_attn.q_proj.weight': parameter 't' is required; add it under parameters:", e.getMessage());
    }

    @Test
    void nonNumericListIsIndexedByLayer() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: dare_linear
                base_model: base
                parameters:
                  rescale: [l1, density, none]
                models: [{model: a, parameters: {weight: 1}}]
                """);
        String[] expect = {"l1", "l1", "density", "density", "none"};
        for (int l = 0; l < 5; l++) {
            double t = ConfigReader.layerT(Q.formatted(l), l, 5);
            assertEquals(expect[l], c.globalParams(Q.formatted(l), t).string("rescale", null), "layer " + l);
        }
    }

    @Test
    void loneFilterMappingReadsAsOneEntryList() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                parameters:
                  weight: {filter: mlp, value: 0.7}
                models: [{model: a}]
                """);
        assertEquals(0.7, c.modelParams(0, UP.formatted(0), 0).number("weight"));
        assertFalse(c.modelParams(0, Q.formatted(0), 0).has("weight"));
    }

    @Test
    void linearSpecFromTheRegistryReadsWeightsAndNormalize() {
        MergeConfig c = ConfigReader.parse("""
                merge_method: linear
                parameters: {normalize: false}
                models:
                  - model: a
                    parameters: {weight: 2}
                  - model: b
                    parameters: {weight: [1, 3]}
                """, "lin.yaml");
        assertEquals("linear", c.method().name());
        assertFalse(c.globalParams("x", 0).flag("normalize", true));
        assertEquals(2.0, c.modelParams(0, Q.formatted(0), 0).number("weight"));
        assertEquals(2.0, c.modelParams(1, Q.formatted(1), 0.5).number("weight"), 1e-12);
        assertEquals(-1, c.baseIndex());
    }
}
