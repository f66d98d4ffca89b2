package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.mergeforge.config.ConfigErrorsTest.error;
import static dev.mergeforge.config.ConfigErrorsTest.has;
import static org.junit.jupiter.api.Assertions.*;

/** YAML syntax errors, files, dtypes, tokenizer keys and our aim: / calibration: blocks. */
class YamlAndExtrasTest {
    static final String MODELS = "merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}]\n";

    /** A YAML-level error: "file:line:column: ..." on one line. */
    static String syntax(String yaml) {
        ConfigException e = assertThrows(ConfigException.class, () -> TestSpecs.parse(yaml));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().startsWith("test.yaml:"), e.getMessage());
        return e.getMessage();
    }

    @Test
    void syntaxErrorNamesLineAndColumn() {
        String m = syntax("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1\n");
        assertTrue(m.matches("test\\.yaml:\\d+:\\d+: YAML syntax error: .*"), m);
        has(m, "fix the YAML at that line and column");
        // a tab for indentation: PyYAML and SnakeYAML both refuse it, at line 3 column 1
        has(syntax("merge_method: linear\nmodels:\n\t- model: a\n"), "test.yaml:3:1: YAML syntax error:");
        // bad indentation of a mapping key
        String bad = syntax("merge_method: linear\nmodels:\n  - model: a\n   parameters: {weight: 1}\n");
        assertTrue(bad.startsWith("test.yaml:4:"), bad);
    }

    @Test
    void duplicateKeyIsAnErrorWithPosition() {
        has(syntax("merge_method: linear\nmerge_method: ties\nmodels: [{model: a}]\n"), "test.yaml:2:1: YAML syntax error:", "duplicate key merge_method");
    }

    @Test
    void emptyOrNonMappingDocument() {
        has(error(""), "test.yaml: the config is empty");
        has(error("# only a comment\n"), "test.yaml: the config is empty");
        has(error("- a\n- b\n"), "test.yaml: the config must be a mapping of keys (merge_method:, models:, ...), got a list");
        has(error("linear\n"), "got a scalar 'linear'");
    }

    @Test
    void readFromFileAndMissingFile(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("merge.yml");
        Files.writeString(f, "merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}, {model: b, parameters: {weight: 3}}]\ndtype: bf16\n");
        MergeConfig c = ConfigReader.read(f);
        assertEquals(List.of("a", "b"), c.models().stream().map(ModelEntry::model).toList());
        assertEquals(DType.BF16, c.dtype());
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigReader.read(dir.resolve("nope.yml")));
        assertTrue(e.getMessage().endsWith("nope.yml: config file not found; check the path"), e.getMessage());
        Files.writeString(f, "merge_method: [\n");
        ConfigException s = assertThrows(ConfigException.class, () -> ConfigReader.read(f));
        assertTrue(s.getMessage().startsWith(f + ":2:1: YAML syntax error"), s.getMessage());
    }

    @Test
    void dtypesAcceptMergekitAndShortSpellings() {
        MergeConfig c = TestSpecs.parse(MODELS + "dtype: float16\nout_dtype: torch.bfloat16\n");
        assertEquals(DType.F16, c.dtype());
        assertEquals(DType.BF16, c.outDtype());
        MergeConfig d = TestSpecs.parse(MODELS);
        assertNull(d.dtype());
        assertNull(d.outDtype());
        assertEquals(DType.F32, TestSpecs.parse(MODELS + "dtype: float32\n").dtype());
    }

    @Test
    void tokenizerSourceAndBlock() {
        assertEquals("union", TestSpecs.parse(MODELS + "tokenizer_source: union\n").tokenizerSource());
        assertEquals("base", TestSpecs.parse(MODELS + "tokenizer_source: base\n").tokenizerSource());
        assertEquals("a", TestSpecs.parse(MODELS + "tokenizer_source: a\n").tokenizerSource());
        assertNull(TestSpecs.parse(MODELS).tokenizerSource());
        // mergekit's tokenizer: block; its source defaults to union
        MergeConfig c = TestSpecs.parse(MODELS + "tokenizer:\n  source: base\n  pad_to_multiple_of: 64\n  tokens:\n    <x>: {source: a}\n");
        assertEquals("base", c.tokenizerSource());
        assertEquals(List.of(), ConfigKeys.notActedOn(c.raw())); // acted on: see TokenizerMergeTest
        assertEquals("union", TestSpecs.parse(MODELS + "tokenizer: {pad_to_multiple_of: 8}\n").tokenizerSource());
        has(error(MODELS + "tokenizer_source: base\ntokenizer: {source: union}\n"), "tokenizer_source: give tokenizer_source or a tokenizer: block, not both");
        has(error(MODELS + "tokenizer: {sauce: base}\n"), "tokenizer.sauce: unknown key; valid keys here: source, tokens, pad_to_multiple_of");
        assertEquals("a+l", TestSpecs.parse(MODELS + "tokenizer_source: a+l\n").tokenizerSource()); // a LoRA'd model's tokenizer is its base's
    }

    @Test
    void chatTemplateAndResidualWeightAreAcceptedAndListedAsNotActedOn() {
        MergeConfig c = TestSpecs.parse(MODELS + "chat_template: chatml\n");
        assertEquals("chatml", c.raw().get("chat_template"));
        assertEquals(List.of(), ConfigKeys.notActedOn(c.raw())); // acted on: see TokenizerMergeTest
        MergeConfig s = TestSpecs.parse("merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 2]}], residual_weight: 0.5}]\n");
        assertEquals(List.of("slices[0].residual_weight"), ConfigKeys.notActedOn(s.raw()));
        assertEquals(List.of(), ConfigKeys.notActedOn(TestSpecs.parse(MODELS).raw()));
        has(error(MODELS + "chat_template: 3\n"), "chat_template: must be a template name or Jinja text");
    }

    @Test
    void aimBlockWithEveryKey() {
        MergeConfig c = TestSpecs.parse(MODELS + """
                aim:
                  omega: 0.3
                  calibration: {data: calib.txt, samples: 64, seq_len: 256}
                  scaling: power
                  power: 2
                  include: [mlp, self_attn]
                  exclude: lm_head
                """);
        AimSettings a = c.aim();
        assertEquals(0.3, a.omega());
        assertNull(a.stats());
        assertEquals(new CalibrationSettings("calib.txt", null, 64, 256), a.calibration());
        assertEquals("power", a.scaling());
        assertEquals(2.0, a.power());
        assertEquals(List.of("mlp", "self_attn"), a.include());
        assertEquals(List.of("lm_head"), a.exclude());
        assertTrue(a.selects("model.layers.0.mlp.up_proj.weight"));
        assertFalse(a.selects("model.norm.weight"));
        assertFalse(new AimSettings(0.4, null, null, "identity", 1, List.of(), List.of("lm_head")).selects("lm_head.weight"));
    }

    @Test
    void aimDefaultsAndShorthands() {
        assertEquals(AimSettings.defaults(), TestSpecs.parse(MODELS + "aim: true\n").aim());
        assertEquals(AimSettings.defaults(), TestSpecs.parse(MODELS + "aim: {}\n").aim());
        assertNull(TestSpecs.parse(MODELS + "aim: false\n").aim());
        assertNull(TestSpecs.parse(MODELS).aim());
        AimSettings d = AimSettings.defaults();
        assertEquals(0.4, d.omega());
        assertEquals("identity", d.scaling());
        assertEquals(1.0, d.power());
        assertEquals("stats.safetensors", TestSpecs.parse(MODELS + "aim: {stats: stats.safetensors, omega: 0}\n").aim().stats());
    }

    @Test
    void aimProblems() {
        String m = error(MODELS + """
                aim:
                  omega: 1.5
                  scaling: cubic
                  power: 2
                  include: [3]
                  stats: s.safetensors
                  calibration: {data: d.txt}
                  oemga: 1
                """);
        has(m, "aim.oemga: unknown key; valid keys here: omega, stats, calibration, scaling, power, include, exclude",
                "aim.omega: must be in [0, 1], got 1.5", "aim.stats: give aim.stats or aim.calibration, not both",
                "aim.scaling: unknown scaling 'cubic'; use identity or power", "aim.power: is only used with scaling: power",
                "aim.include[0]: must be a tensor-name substring");
        has(error(MODELS + "aim: {scaling: power, power: -1}\n"), "aim.power: must be > 0, got -1.0");
        has(error(MODELS + "aim: 0.4\n"), "aim: must be a mapping of keys, got a scalar '0.4'");
    }

    @Test
    void calibrationBlocks() {
        MergeConfig c = TestSpecs.parse("""
                merge_method: linear
                calibration: {stats: fisher.safetensors}
                models:
                  - model: a
                    parameters: {weight: 1}
                    calibration: {data: a.jsonl, samples: 32}
                  - model: b
                    parameters: {weight: 1}
                """);
        assertEquals(new CalibrationSettings(null, "fisher.safetensors", null, null), c.calibration());
        CalibrationSettings a = c.models().get(0).calibration();
        assertEquals("a.jsonl", a.data());
        assertEquals(32, a.samplesOrDefault());
        assertEquals(512, a.seqLenOrDefault());
        assertNull(c.models().get(1).calibration());
        has(error(MODELS + "calibration: {data: d.txt, stats: s.safetensors, samples: 0, seq_len: 1.5, batch: 2}\n"),
                "calibration.batch: unknown key; valid keys here: data, stats, samples, seq_len",
                "calibration: give data (to compute statistics) or stats (to reuse them), not both",
                "calibration.samples: must be a whole number > 0, got '0'", "calibration.seq_len: must be a whole number > 0, got '1.5'");
        has(error("merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}, calibration: {data: 3}}]\n"),
                "models[0].calibration.data: must be a file path or name (a string), got '3'; quote it");
    }

    @Test
    void recordsValidateTheirValues() {
        assertThrows(IllegalArgumentException.class, () -> new AimSettings(-0.1, null, null, "identity", 1, List.of(), List.of()));
        assertThrows(IllegalArgumentException.class, () -> new AimSettings(0.4, null, null, "log", 1, List.of(), List.of()));
        assertThrows(IllegalArgumentException.class, () -> new AimSettings(0.4, null, null, "power", 0, List.of(), List.of()));
        assertThrows(IllegalArgumentException.class, () -> new CalibrationSettings("d", "s", null, null));
        assertThrows(IllegalArgumentException.class, () -> new CalibrationSettings("d", null, -1, null));
        assertThrows(IllegalArgumentException.class, () -> new SliceSource("a", 3, 3, ParamTable.empty("p")));
        assertThrows(IllegalArgumentException.class, () -> new Slice(List.of(new SliceSource("a", 0, 2, ParamTable.empty("p")),
                new SliceSource("b", 0, 3, ParamTable.empty("p")))));
    }
}
