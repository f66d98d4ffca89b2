package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Every user error: one line, naming the key path and the fix; all problems of a file together. */
class ConfigErrorsTest {

    static String error(String yaml) {
        ConfigException e = assertThrows(ConfigException.class, () -> TestSpecs.parse(yaml));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        assertTrue(e.getMessage().startsWith("test.yaml: "), e.getMessage());
        assertEquals(2, e.exitCode());
        return e.getMessage();
    }

    static void has(String msg, String... parts) {
        for (String p : parts) assertTrue(msg.contains(p), "expected '" + p + "' in: " + msg);
    }

    @Test
    void unknownTopLevelKeyListsValidKeys() {
        has(error("merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}]\nbase_modle: x\n"),
                "base_modle: unknown top-level key; valid keys: merge_method, base_model, models", "aim, calibration");
    }

    @Test
    void unknownKeysInModelsSlicesAndSources() {
        has(error("merge_method: linear\nmodels: [{model: a, weigth: 1, parameters: {weight: 1}}]\n"),
                "models[0].weigth: unknown key; valid keys here: model, parameters, calibration");
        has(error("merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 2], layers: 3}], extra: 1}]\n"),
                "slices[0].extra: unknown key; valid keys here: sources, base_model, parameters, residual_weight",
                "slices[0].sources[0].layers: unknown key; valid keys here: model, layer_range, parameters");
    }

    @Test
    void unknownParameterListsValidNames() {
        has(error("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters: {weight: 1, densty: 0.5}
                parameters: {lamda: 1}
                """),
                "2 problems",
                "models[0].parameters.densty: unknown parameter of ties; valid here: weight, density",
                "parameters.lamda: unknown parameter of ties; valid here: weight, density, normalize, lambda, int8_mask");
    }

    @Test
    void globalParameterUnderAModelIsMovedToTopLevel() {
        has(error("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters: {weight: 1, normalize: false}
                """),
                "models[0].parameters.normalize: 'normalize' is a global parameter of ties", "move it to the top-level parameters:");
    }

    @Test
    void outOfRangeValuesNameThePathAndRange() {
        String m = error("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters:
                      weight: .nan
                      density: [1, 0.5, 0]
                  - model: b
                    parameters:
                      weight: 1
                      density:
                        - filter: mlp
                          value: 1.5
                """);
        has(m, "3 problems", "models[0].parameters.weight: must be finite", "models[0].parameters.density[2]: must be > 0.0, got 0.0 (density must be in (0.0, 1.0])",
                "models[1].parameters.density[0].value: must be <= 1.0, got 1.5");
        has(error("""
                merge_method: slerp
                base_model: a
                models: [{model: a}, {model: b}]
                parameters: {t: 1.2}
                """), "parameters.t: must be <= 1.0, got 1.2 (t must be in [0.0, 1.0])");
    }

    @Test
    void wrongTypesNameThePath() {
        String m = error("""
                merge_method: ties
                base_model: base
                parameters: {normalize: maybe, lambda: [1, [2]]}
                models:
                  - model: a
                    parameters: {weight: true}
                """);
        has(m, "parameters.normalize: must be true or false, got 'maybe' (normalize takes true or false)",
                "parameters.lambda[1]: must be a single value, got a nested list",
                "models[0].parameters.weight: must be a number, got 'true'");
        has(error("merge_method: linear\nmodels: [{model: a, parameters: [1]}]\n"),
                "models[0].parameters: must be a mapping of parameter names to values, got a list");
        has(error("merge_method: linear\nmodels: {model: a}\n"), "models: must be a list of entries");
        has(error("merge_method: linear\nmodels: [{model: a, parameters: {weight: }}]\n"), "models[0].parameters.weight: has no value");
        has(error("merge_method: linear\nmodels: [{model: a, parameters: {weight: []}}]\n"), "models[0].parameters.weight: is an empty list");
    }

    @Test
    void malformedFilters() {
        String m = error("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters:
                      weight:
                        - filter: mlp
                        - {filter: 3, value: 1}
                        - {fliter: x, value: 1}
                      density: [{filter: mlp, value: 0.5}, 0.3]
                """);
        has(m, "models[0].parameters.weight[0].value: is missing", "models[0].parameters.weight[1].filter: must be a substring",
                "models[0].parameters.weight[2].fliter: unknown key in a filter entry; valid keys: filter, value",
                "models[0].parameters.density: mixes {filter, value} entries with plain values");
        has(error("""
                merge_method: ties
                base_model: base
                models:
                  - model: a
                    parameters:
                      weight: [{value: {filter: x, value: 1}}]
                """), "weight[0].value: a filter's value cannot itself be a {filter, value}");
    }

    @Test
    void registeredLinearSpecValidatesItsParameters() {
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigReader.parse("""
                merge_method: linear
                parameters: {normalize: 2}
                models:
                  - model: a
                    parameters: {weight: .inf}
                  - model: b
                    parameters: {weight: [1, x], density: 0.5}
                """, "lin.yaml"));
        has(e.getMessage(), "lin.yaml: 4 problems", "parameters.normalize: must be true or false, got '2'",
                "models[0].parameters.weight: must be finite, got Infinity",
                "models[1].parameters.weight[1]: must be a number, got 'x'",
                "models[1].parameters.density: unknown parameter of linear; valid here: weight");
    }

    @Test
    void methodMissingOrUnknown() {
        has(error("models: [{model: a}]\n"), "merge_method: is missing; add merge_method: <name> (valid: linear, ties");
        has(error("merge_method: tie\nmodels: [{model: a}]\n"), "merge_method: unknown method 'tie'; valid methods: linear, ties, slerp");
        ConfigException e = assertThrows(ConfigException.class,
                () -> ConfigReader.parse("merge_method: nope\nmodels: [{model: a}]\n", "r.yaml"));
        assertTrue(e.getMessage().contains("valid methods: linear"), e.getMessage());
    }

    @Test
    void baseModelRules() {
        has(error("merge_method: ties\nmodels: [{model: a, parameters: {weight: 1}}]\n"),
                "base_model: is missing; ties needs a base model: add base_model: <directory>");
        has(error("merge_method: linear\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1}}]\n"),
                "base_model: linear does not use a base model; remove base_model:");
        has(error("""
                merge_method: ties
                slices:
                  - sources: [{model: a, layer_range: [0, 2], parameters: {weight: 1}}]
                """), "base_model: is missing; ties needs a base model");
        // one slice with its own base, one without: only the second is short of a base
        String m = error("""
                merge_method: ties
                slices:
                  - base_model: a
                    sources: [{model: b, layer_range: [0, 2], parameters: {weight: 1}}]
                  - sources: [{model: b, layer_range: [2, 4], parameters: {weight: 1}}]
                """);
        has(m, "base_model: is missing; ties needs a base model");
        assertFalse(m.contains("problems"), m);
    }

    @Test
    void modelsMissingEmptyOrBoth() {
        has(error("merge_method: linear\n"), "models: is missing; list the models to merge under models:");
        has(error("merge_method: linear\nmodels: []\n"), "models: is empty; list at least one model");
        has(error("merge_method: passthrough\nmodels: [{model: a}]\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]\n"),
                "slices: give models: or slices:, not both");
        has(error("merge_method: linear\nmodels: [{parameters: {weight: 1}}]\n"), "models[0].model: is missing; add model: <directory>");
    }

    @Test
    void modelCountOutsideMethodLimits() {
        has(error("""
                merge_method: slerp
                base_model: a
                parameters: {t: 0.5}
                models: [{model: a}, {model: b}, {model: c}]
                """), "models: slerp merges at most 1 model(s) besides the base model, got 2; remove models");
        has(error("""
                merge_method: task_like
                models: [{model: a, parameters: {weight: 1}}]
                """), "models: task_like merges at least 2 model(s) besides the base model, got 1; add models");
        has(error("""
                merge_method: slerp
                base_model: a
                parameters: {t: 0.5}
                models: [{model: a}]
                """), "models: slerp merges at least 1 model(s) besides the base model, got 0");
        has(error("""
                merge_method: passthrough
                slices: [{sources: [{model: a, layer_range: [0, 2]}, {model: b, layer_range: [0, 2]}]}]
                """), "slices[0].sources: passthrough merges at most 1 model(s), got 2");
    }

    @Test
    void duplicateModelIsRefused() {
        has(error("""
                merge_method: linear
                models:
                  - {model: a, parameters: {weight: 1}}
                  - {model: b, parameters: {weight: 1}}
                  - {model: a, parameters: {weight: 2}}
                """), "models[2].model: 'a' is listed twice (also models[0]); list each model once");
        has(error("""
                merge_method: linear
                slices: [{sources: [{model: a, layer_range: [0, 2], parameters: {weight: 1}}, {model: a, layer_range: [2, 4], parameters: {weight: 1}}]}]
                """), "slices[0].sources[1].model: 'a' is listed twice in this slice (also sources[0])");
    }

    @Test
    void requiredParameters() {
        has(error("merge_method: linear\nmodels: [{model: a}, {model: b, parameters: {weight: 1}}]\n"),
                "models[0].parameters.weight: is required by linear for models[0]; add weight: to models[0].parameters or to the top-level parameters:");
        has(error("merge_method: slerp\nbase_model: a\nmodels: [{model: a}, {model: b}]\n"),
                "parameters.t: is required by slerp; add t: under parameters:");
        // a slice-level value satisfies the requirement
        assertEquals(0.25, TestSpecs.parse("""
                merge_method: slerp
                base_model: a
                slices:
                  - sources: [{model: a, layer_range: [0, 2]}, {model: b, layer_range: [0, 2]}]
                    parameters: {t: 0.25}
                """).sliceGlobalParams(0, "x", 0).number("t"));
    }

    @Test
    void layerRangeProblems() {
        String m = error("""
                merge_method: passthrough
                slices:
                  - sources: [{model: a, layer_range: [4, 2]}]
                  - sources: [{model: a, layer_range: [0]}]
                  - sources: [{model: a}]
                  - sources: [{model: a, layer_range: [-1, 2]}]
                """);
        has(m, "4 problems", "slices[0].sources[0].layer_range: must be [start, end] with 0 <= start < end (end exclusive), got [4, 2]",
                "slices[1].sources[0].layer_range: must be two whole numbers", "slices[2].sources[0].layer_range: is missing",
                "slices[3].sources[0].layer_range: must be [start, end] with 0 <= start < end");
        has(error("""
                merge_method: slerp
                base_model: a
                parameters: {t: 0.5}
                slices: [{sources: [{model: a, layer_range: [0, 8]}, {model: b, layer_range: [0, 10]}]}]
                """), "slices[0].sources: all sources of a slice must span the same number of layers, got 8 (a) and 10 (b)");
        has(error("merge_method: passthrough\nslices: []\n"), "slices: must be a non-empty list");
        has(error("merge_method: passthrough\nslices: [{base_model: a}]\n"), "slices[0].sources: must be a non-empty list");
    }

    @Test
    void loraIsKeptAsModelPlusAdapterAndARevisionIsKept() {
        // LoRA references are mergekit's model+lora (applied while reading: LoraMergeTest); a malformed one is refused
        assertEquals("org/base+org/lora", TestSpecs.parse("merge_method: linear\nmodels: [{model: org/base+org/lora, parameters: {weight: 1}}]\n").models().getFirst().model());
        has(error("merge_method: linear\nmodels: [{model: a+b+c, parameters: {weight: 1}}]\n"), "models[0].model: 'a+b+c' is not model+adapter");
        assertEquals("a+l", TestSpecs.parse("merge_method: linear\nmodels: [{model: {model: a, lora: l}, parameters: {weight: 1}}]\n").models().getFirst().model());
        has(error("merge_method: linear\nmodels: [{model: {model: a, lora: 3}, parameters: {weight: 1}}]\n"), "models[0].model.lora: must be a LoRA adapter directory");
        has(error("merge_method: linear\nmodels: [{model: 3.5, parameters: {weight: 1}}]\n"),
                "models[0].model: must be a model directory (a string), got '3.5'");
        // the bad reference is the only problem: no follow-on "no models" or "base_model missing"
        assertFalse(error("merge_method: linear\nmodels: [{model: a+b+c, parameters: {weight: 1}}]\n").contains("problems"));
        // a hub revision is kept for the cache lookup (docs/io.md), in either spelling, with or without an adapter
        assertEquals("org/m@v2", TestSpecs.parse("merge_method: ties\nbase_model: org/m@v2\nmodels: [{model: a, parameters: {weight: 1}}]\n").baseModel());
        assertEquals("org/m@v2", TestSpecs.parse("merge_method: linear\nmodels: [{model: {model: {path: org/m, revision: v2}}, parameters: {weight: 1}}]\n").models().getFirst().model());
        assertEquals("org/m@v2+l", TestSpecs.parse("merge_method: linear\nmodels: [{model: {model: {path: org/m, revision: v2}, lora: l}, parameters: {weight: 1}}]\n").models().getFirst().model());
        assertEquals("org/m+l", TestSpecs.parse("merge_method: linear\nmodels: [{model: {model: {path: org/m}, lora: l}, parameters: {weight: 1}}]\n").models().getFirst().model());
        has(error("merge_method: linear\nmodels: [{model: {model: {path: org/m@v1, revision: v2}}, parameters: {weight: 1}}]\n"),
                "models[0].model.model.revision: must be a branch, tag or commit (a string) for a path without '@'");
        assertEquals("a", TestSpecs.parse("merge_method: linear\nmodels: [{model: {model: a}, parameters: {weight: 1}}]\n").models().getFirst().model());
    }

    @Test
    void modulesIsKnownButRefused() {
        has(error("merge_method: linear\nmodules: {text: {models: [{model: a}]}}\n"),
                "modules: mergekit's multi-module syntax (modules:) is not supported yet; use models: or slices:");
    }

    @Test
    void dtypeNames() {
        has(error("merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}]\ndtype: float8\nout_dtype: 16\n"),
                "dtype: unknown dtype 'float8'; use bfloat16, float16 or float32", "out_dtype: unknown dtype '16'");
    }

    @Test
    void allProblemsAreCollectedInFileOrderWithOneHeader() {
        String m = error("""
                merge_method: ties
                colour: red
                models:
                  - model: a+b
                  - model: c
                    parameters: {weight: 1, density: 2}
                dtype: f8
                """);
        has(m, "test.yaml: 5 problems: colour: unknown top-level key");
        assertTrue(m.indexOf("models[0].model") < m.indexOf("models[1].parameters.density"), m);
        assertEquals(5, m.split("; (?=[a-z_]+[\\[.:])").length, m);
    }

    @Test
    void postWeightsTIsZeroOrOne() {
        for (String v : new String[]{"0.5", "'last'", "2"}) {
            has(error("merge_method: linear\nmodels:\n  - {model: a, parameters: {weight: 1}}\npost_weights_t: " + v + "\n"),
                    "post_weights_t: must be 0 (mergekit 0.1.2+, the default) or 1 (mergekit 0.1.0-0.1.1)");
        }
        assertEquals(1.0, TestSpecs.parse("merge_method: linear\nmodels:\n  - {model: a, parameters: {weight: 1}}\npost_weights_t: 1\n").postWeightsT());
        assertEquals(0.0, TestSpecs.parse("merge_method: linear\nmodels:\n  - {model: a, parameters: {weight: 1}}\n").postWeightsT());
    }
}
