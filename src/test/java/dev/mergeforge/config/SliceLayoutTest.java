package dev.mergeforge.config;

import dev.mergeforge.merge.Params;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Slices: layer ranges, per-slice t, and source > slice > top-level precedence. */
class SliceLayoutTest {

    @Test
    void passthroughStacksSlicesAndRestartsTInEachSlice() {
        MergeConfig c = TestSpecs.parse("""
                slices:
                  - sources:
                    - model: m1
                      layer_range: [0, 24]
                  - sources:
                    - model: m2
                      layer_range: [20, 40]
                merge_method: passthrough
                dtype: float16
                """);
        assertTrue(c.hasSlices());
        assertTrue(c.models().isEmpty());
        assertEquals(44, c.numOutputLayers());
        for (int out = 0; out < 44; out++) {
            SliceLayer l = c.sliceLayer(out);
            int slice = out < 24 ? 0 : 1, offset = out < 24 ? out : out - 24, len = out < 24 ? 24 : 20;
            int src = out < 24 ? out : 20 + (out - 24);
            assertEquals(slice, l.slice(), "out " + out);
            assertEquals(offset, l.offset());
            assertEquals(List.of(src), l.sourceLayers());
            assertEquals((double) offset / (len - 1), l.t(), 1e-15);
        }
        assertThrows(IllegalArgumentException.class, () -> c.sliceLayer(44));
        assertEquals("m2", c.slices().get(1).sources().getFirst().model());
        assertEquals(20, c.slices().get(1).sources().getFirst().layerStart());
        assertEquals(40, c.slices().get(1).sources().getFirst().layerEnd());
    }

    @Test
    void oneLayerSliceHasTOne() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: passthrough
                slices:
                  - sources: [{model: a, layer_range: [0, 3]}]
                  - sources: [{model: b, layer_range: [5, 6]}]
                """);
        assertEquals(4, c.numOutputLayers());
        assertEquals(1.0, c.sliceLayer(3).t());
        assertEquals(List.of(5), c.sliceLayer(3).sourceLayers());
        assertEquals(0.5, c.sliceLayer(1).t());
    }

    @Test
    void mergedSliceMapsEverySourceAtTheSameOffset() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: slerp
                base_model: a
                parameters: {t: [0, 1]}
                slices:
                  - sources:
                      - {model: a, layer_range: [2, 6]}
                      - {model: b, layer_range: [10, 14]}
                """);
        for (int out = 0; out < 4; out++) {
            SliceLayer l = c.sliceLayer(out);
            assertEquals(List.of(2 + out, 10 + out), l.sourceLayers());
            assertEquals(out / 3.0, l.t(), 1e-15);
            // gradient [0, 1] at t is t itself
            assertEquals(out / 3.0, c.sliceGlobalParams(0, "model.layers." + out + ".mlp.up_proj.weight", l.t()).number("t"), 1e-12);
        }
    }

    @Test
    void sourceThenSliceThenTopLevelPrecedence() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                parameters:
                  weight: 0.1
                  density: 0.9
                  lambda: 2
                slices:
                  - sources:
                      - model: a
                        layer_range: [0, 4]
                        parameters: {weight: 0.7}
                      - model: b
                        layer_range: [0, 4]
                    parameters:
                      weight: 0.4
                      lambda: 3
                  - sources:
                      - {model: a, layer_range: [4, 8]}
                """);
        String n = "model.layers.0.mlp.up_proj.weight";
        Params a0 = c.sliceSourceParams(0, 0, n, 0), b0 = c.sliceSourceParams(0, 1, n, 0), a1 = c.sliceSourceParams(1, 0, n, 0);
        assertEquals(0.7, a0.number("weight"));   // source
        assertEquals(0.4, b0.number("weight"));   // slice
        assertEquals(0.1, a1.number("weight"));   // top level
        assertEquals(0.9, a0.number("density"));
        assertEquals(3.0, c.sliceGlobalParams(0, n, 0).number("lambda"));
        assertEquals(2.0, c.sliceGlobalParams(1, n, 0).number("lambda"));
        assertEquals("base", c.sliceBaseModel(1));
    }

    @Test
    void sliceBaseModelOverridesTopLevel() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: ties
                base_model: base
                slices:
                  - base_model: a
                    sources:
                      - {model: a, layer_range: [0, 2]}
                      - {model: b, layer_range: [0, 2], parameters: {weight: 1}}
                  - sources:
                      - {model: b, layer_range: [2, 4], parameters: {weight: 1}}
                """);
        assertEquals("a", c.sliceBaseModel(0));
        assertEquals("base", c.sliceBaseModel(1));
        assertEquals("a", c.slices().get(0).baseModel());
        assertNull(c.slices().get(1).baseModel());
    }

    @Test
    void layerTForModelsConfigs() {
        assertEquals(0.0, ConfigReader.layerT("model.layers.0.mlp.up_proj.weight", 0, 4));
        assertEquals(1.0 / 3, ConfigReader.layerT("model.layers.1.mlp.up_proj.weight", 1, 4), 1e-15);
        assertEquals(1.0, ConfigReader.layerT("model.layers.3.mlp.up_proj.weight", 3, 4));
        assertEquals(1.0, ConfigReader.layerT("model.layers.0.mlp.up_proj.weight", 0, 1));   // one layer -> 1
        // index read from the name when not given
        assertEquals(2.0 / 3, ConfigReader.layerT("model.layers.2.self_attn.v_proj.weight", -1, 4), 1e-15);
        assertEquals(0.5, ConfigReader.layerT("transformer.h.1.attn.c_attn.weight", -1, 3), 1e-15);
        // pre weights always at 0; post weights at post_weights_t (1 here, to tell them apart)
        assertEquals(0.0, ConfigReader.layerT("model.embed_tokens.weight", -1, 4, 1.0));
        assertEquals(0.0, ConfigReader.layerT("transformer.wte.weight", -1, 4, 1.0));
        assertEquals(0.0, ConfigReader.layerT("transformer.wpe.weight", -1, 4, 1.0));
        assertEquals(1.0, ConfigReader.layerT("model.norm.weight", -1, 4, 1.0));
        assertEquals(1.0, ConfigReader.layerT("lm_head.weight", -1, 4, 1.0));
        assertEquals(1.0, ConfigReader.layerT("transformer.ln_f.weight", -1, 4, 1.0));
        assertEquals(1.0, ConfigReader.layerT("embed_out.weight", -1, 4, 1.0));
        // by default (mergekit 0.1.2+) post weights are at 0 too
        assertEquals(0.0, ConfigReader.layerT("lm_head.weight", -1, 4));
        assertEquals(0.0, ConfigReader.layerT("model.norm.weight", -1, 4));
        assertThrows(IllegalArgumentException.class, () -> ConfigReader.layerT("model.layers.4.mlp.up_proj.weight", -1, 4));
        assertThrows(IllegalArgumentException.class, () -> ConfigReader.layerT("x", 0, 0));
    }

    @Test
    void layerIndexOfNames() {
        assertEquals(12, ConfigReader.layerIndexOf("model.layers.12.mlp.down_proj.weight"));
        assertEquals(3, ConfigReader.layerIndexOf("transformer.h.3.ln_1.weight"));
        assertEquals(0, ConfigReader.layerIndexOf("bert.encoder.layer.0.attention.self.query.weight"));
        assertEquals(-1, ConfigReader.layerIndexOf("model.norm.weight"));
        assertEquals(-1, ConfigReader.layerIndexOf("lm_head.weight"));
    }
}
