package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Config and command-line mistakes through the CLI: exit 2, one line naming the key and the fix, nothing written. */
class CliConfigErrorsTest {
    @TempDir static Path models;
    static RandomModels.Family f;
    @TempDir Path dir;

    @BeforeAll
    static void family() {
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, models.resolve("fam"));
    }

    private List<Path> inputs() { return List.of(f.base(), f.fineTunes().get(0), f.fineTunes().get(1)); }

    private MergeFixtures.Run fails(String yaml, List<String> extra, String... mustContain) throws Exception {
        Path cfg = MergeFixtures.yaml(dir, "cfg.yml", yaml.replace("BASE", f.base().toString())
                .replace("FT0", f.fineTunes().get(0).toString()).replace("FT1", f.fineTunes().get(1).toString()));
        return CliFailure.mergeFails(2, cfg, dir.resolve("out"), inputs(), extra, mustContain);
    }

    private static final String TIES = """
            merge_method: ties
            base_model: BASE
            models:
              - model: FT0
                parameters: {weight: 1.0, density: 0.5}
              - model: FT1
                parameters: {weight: 1.0, density: 0.5}
            """;

    @Test
    void yamlSyntaxErrorNamesLineAndColumn() throws Exception {
        fails("""
                merge_method: linear
                models:
                  - model: FT0
                   parameters: {weight: 1.0}
                """, List.of(), "cfg.yml:4:", "YAML syntax error", "fix the YAML");
    }

    @Test
    void unknownMethodListsTheValidOnes() throws Exception {
        fails(TIES.replace("merge_method: ties", "merge_method: tiez"), List.of(), "tiez", "ties", "linear", "slerp");
    }

    @Test
    void unknownTopLevelKeyIsNamed() throws Exception {
        fails(TIES + "tokenizer_sourse: base\n", List.of(), "tokenizer_sourse");
    }

    @Test
    void unknownParameterIsNamed() throws Exception {
        fails(TIES.replace("{weight: 1.0, density: 0.5}\n  - model: FT1", "{weight: 1.0, densty: 0.5}\n  - model: FT1"), List.of(), "densty");
    }

    @Test
    void wrongTypeIsNamed() throws Exception {
        fails(TIES.replace("weight: 1.0, density: 0.5}\n  - model: FT1", "weight: heavy, density: 0.5}\n  - model: FT1"), List.of(), "weight", "heavy");
    }

    @Test
    void densityOutsideZeroOneIsRefused() throws Exception {
        fails(TIES.replace("density: 0.5}\n  - model: FT1", "density: 1.5}\n  - model: FT1"), List.of(), "density", "1.5");
        fails(TIES.replace("density: 0.5}\n  - model: FT1", "density: 0}\n  - model: FT1"), List.of(), "density");
    }

    @Test
    void slerpTOutsideZeroOneIsRefused() throws Exception {
        fails("""
                merge_method: slerp
                base_model: FT0
                models:
                  - model: FT0
                  - model: FT1
                parameters: {t: 1.5}
                """, List.of(), "t", "1.5");
    }

    @Test
    void negativeShardSizeAndThreadsAreRefused() throws Exception {
        String linear = """
                merge_method: linear
                models:
                  - model: FT0
                    parameters: {weight: 1.0}
                """;
        fails(linear, List.of("--out-shard-size", "-5GB"), "--out-shard-size", "-5GB");
        fails(linear, List.of("--threads", "-1"), "--threads", "-1");
    }

    @Test
    void baseModelMissingWhereTheMethodNeedsOne() throws Exception {
        fails(TIES.replace("base_model: BASE\n", ""), List.of(), "base_model");
    }

    @Test
    void noModels() throws Exception {
        fails("merge_method: linear\nmodels: []\n", List.of(), "models");
        fails("merge_method: linear\n", List.of(), "models");
    }

    @Test
    void aModelListedTwiceIsRefused() throws Exception {
        fails("""
                merge_method: linear
                models:
                  - model: FT0
                    parameters: {weight: 1.0}
                  - model: FT0
                    parameters: {weight: 2.0}
                """, List.of(), "listed twice");
    }

    @Test
    void missingConfigFileIsNamed() {
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", dir.resolve("nope.yml").toString(), out.toString());
        CliFailure.assertOneLine(r, 2, "nope.yml", "not found");
        CliFailure.assertNothingWritten(out);
    }

    @Test
    void unknownOptionAndBadOptionValueAreOneLineUsageErrors() {
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", "cfg.yml", out.toString(), "--overwirte");
        CliFailure.assertOneLine(r, 2, "--overwirte", "--help");
        MergeFixtures.Run t = MergeFixtures.cli("merge", "cfg.yml", out.toString(), "--threads", "many");
        CliFailure.assertOneLine(t, 2, "--threads", "many");
        MergeFixtures.Run e = MergeFixtures.cli("merge", "cfg.yml", out.toString(), "--events", "xml");
        CliFailure.assertOneLine(e, 2, "--events", "xml");
        MergeFixtures.Run m = MergeFixtures.cli("merge", "cfg.yml");
        CliFailure.assertOneLine(m, 2, "OUTPUT_DIR");
        CliFailure.assertNothingWritten(out);
    }

    @Test
    void debugAddsTheStackTrace() throws Exception {
        Path cfg = MergeFixtures.yaml(dir, "cfg.yml", "merge_method: tiez\nmodels:\n  - model: " + f.base() + "\n");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), dir.resolve("out").toString(), "--debug");
        assertTrue(r.exit() == 2 && r.err().startsWith("error: ") && r.err().contains("\tat dev.mergeforge."), r.err());
    }

    @Test
    void aBadTokenizerSettingIsRefusedBeforeTheFirstTensor() throws Exception {
        MergeFixtures.Run r = fails("""
                merge_method: linear
                models:
                  - model: FT0
                    parameters: {weight: 1.0}
                  - model: FT1
                    parameters: {weight: 1.0}
                tokenizer_source: union
                chat_template: chatmll
                """, List.of(), "chat_template", "chatmll", "chatml");
        MergeFixtures.Run ev = MergeFixtures.cli("merge", dir.resolve("cfg.yml").toString(), dir.resolve("out").toString(), "--events", "json");
        assertTrue(ev.out().lines().noneMatch(l -> l.contains("\"event\":\"tensor\"")), "refused before merging: " + ev.out());
        MergeFixtures.Run dry = MergeFixtures.cli("merge", dir.resolve("cfg.yml").toString(), dir.resolve("out").toString(), "--dry-run");
        CliFailure.assertOneLine(dry, 2, "chat_template");
    }
}
