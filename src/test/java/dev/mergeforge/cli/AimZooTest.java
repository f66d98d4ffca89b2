package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * AIM end to end on the shared zoo (a trained Llama family with transformers' reference scores):
 * the three ways (config, `aim` command, precomputed stats), calibration through the CLI, and the
 * reference merges' scores reproduced.
 */
class AimZooTest {
    static Path zoo;
    static JsonNode scores;

    @TempDir Path dir;

    @BeforeAll
    static void findZoo() throws Exception {
        zoo = Path.of(System.getProperty("mergeforge.shared", "../shared"), "zoo");
        assumeTrue(Files.isDirectory(zoo.resolve("base")), "the shared zoo is not beside the checkout: " + zoo);
        scores = new ObjectMapper().readTree(zoo.resolve("reference/scores.json").toFile());
    }

    Path taConfig(String aim) throws Exception {
        return MergeFixtures.yaml(dir, "ta.yml", """
                merge_method: task_arithmetic
                base_model: %1$s/base
                models:
                  - model: %1$s/ft_dup
                    parameters: {weight: 1.0}
                  - model: %1$s/ft_swap
                    parameters: {weight: 1.0}
                  - model: %1$s/ft_mirror
                    parameters: {weight: 1.0}
                dtype: float32
                %2$s""".formatted(zoo.toAbsolutePath(), aim));
    }

    JsonNode eval(Path model) throws Exception {
        MergeFixtures.Run r = MergeFixtures.cli("eval", model.toString(), "--text", zoo.resolve("data/general_eval.txt").toString(),
                "--tasks", zoo.resolve("data/dup_eval.jsonl").toString(), "--json");
        assertEquals(0, r.exit(), r.err());
        return new ObjectMapper().readTree(r.out());
    }

    @Test
    void taskArithmeticWithAndWithoutAimReproducesTheReferenceScores() throws Exception {
        Path plain = dir.resolve("ta"), aim = dir.resolve("ta-aim");
        assertEquals(0, MergeFixtures.cli("merge", taConfig("").toString(), plain.toString(), "-q").exit());
        Path stats = zoo.resolve("reference/act_mean_base.safetensors").toAbsolutePath();
        MergeFixtures.Run r = MergeFixtures.cli("merge", taConfig("aim: {omega: 0.4, stats: " + stats + "}").toString(), aim.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        JsonNode p = eval(plain), a = eval(aim);
        JsonNode refP = scores.get("task_arithmetic(w=1)"), refA = scores.get("task_arithmetic(w=1)+aim(omega=0.4)");
        assertEquals(refP.get("general_loss").asDouble(), p.at("/text/mean_nll").asDouble(), 2e-3);
        assertEquals(refA.get("general_loss").asDouble(), a.at("/text/mean_nll").asDouble(), 2e-3);
        assertEquals(refP.get("dup_answer_nll").asDouble(), p.at("/tasks/dup_eval.jsonl/answer_nll").asDouble(), 2e-3);
        assertEquals(refA.get("dup_answer_nll").asDouble(), a.at("/tasks/dup_eval.jsonl/answer_nll").asDouble(), 2e-3);
    }

    @Test
    void tiesReproducesTheReferenceScores() throws Exception {
        Path cfg = MergeFixtures.yaml(dir, "ties.yml", """
                merge_method: ties
                base_model: %1$s/base
                models:
                  - model: %1$s/ft_dup
                    parameters: {weight: 1.0, density: 1.0}
                  - model: %1$s/ft_swap
                    parameters: {weight: 1.0, density: 1.0}
                  - model: %1$s/ft_mirror
                    parameters: {weight: 1.0, density: 1.0}
                dtype: float32
                """.formatted(zoo.toAbsolutePath()));
        Path out = dir.resolve("ties");
        assertEquals(0, MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q").exit());
        JsonNode e = eval(out), ref = scores.get("ties(w=1,d=1)");
        assertEquals(ref.get("general_loss").asDouble(), e.at("/text/mean_nll").asDouble(), 2e-3);
        assertEquals(ref.get("dup_answer_nll").asDouble(), e.at("/tasks/dup_eval.jsonl/answer_nll").asDouble(), 2e-3);
    }

    @Test
    void theAimCommandOnAMergedModelEqualsAimInTheConfig() throws Exception {
        Path plain = dir.resolve("ta"), viaConfig = dir.resolve("cfg-aim"), viaCommand = dir.resolve("cmd-aim");
        Path stats = zoo.resolve("reference/act_mean_base.safetensors").toAbsolutePath();
        assertEquals(0, MergeFixtures.cli("merge", taConfig("").toString(), plain.toString(), "-q").exit());
        assertEquals(0, MergeFixtures.cli("merge", taConfig("aim: {omega: 0.3, stats: " + stats + "}").toString(), viaConfig.toString(), "-q").exit());
        MergeFixtures.Run r = MergeFixtures.cli("aim", "--merged", plain.toString(), "--base", zoo.resolve("base").toString(),
                "--omega", "0.3", "--stats", stats.toString(), "-o", viaCommand.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        try (Checkpoint a = Checkpoint.open(viaConfig.toString()); Checkpoint b = Checkpoint.open(viaCommand.toString())) {
            for (String n : a.names()) assertEquals(-1, a.tensor(n).data().mismatch(b.tensor(n).data()), n);
        }
    }

    @Test
    void omegaOneReproducesThePlainMergeBitForBit() throws Exception {
        Path plain = dir.resolve("ta"), one = dir.resolve("one");
        Path stats = zoo.resolve("reference/act_mean_base.safetensors").toAbsolutePath();
        assertEquals(0, MergeFixtures.cli("merge", taConfig("").toString(), plain.toString(), "-q").exit());
        assertEquals(0, MergeFixtures.cli("merge", taConfig("aim: {omega: 1.0, stats: " + stats + "}").toString(), one.toString(), "-q").exit());
        try (Checkpoint a = Checkpoint.open(plain.toString()); Checkpoint b = Checkpoint.open(one.toString())) {
            for (String n : a.names()) assertEquals(-1, a.tensor(n).data().mismatch(b.tensor(n).data()), n);
        }
    }

    @Test
    void calibrateThroughTheCliReproducesTheReferenceStatistic() throws Exception {
        Path out = dir.resolve("stats.safetensors");
        MergeFixtures.Run r = MergeFixtures.cli("calibrate", zoo.resolve("base").toString(), "--data",
                zoo.resolve("data/general_calib_blocks.jsonl").toString(), "--samples", "16", "--no-cache", "-o", out.toString());
        assertEquals(0, r.exit(), r.err());
        try (SafetensorsFile ours = SafetensorsFile.open(out); SafetensorsFile ref = SafetensorsFile.open(zoo.resolve("reference/act_mean_base.safetensors"))) {
            assertEquals(ref.names().size(), ours.names().size());
            for (String n : ref.names()) {
                double[] a = MergeFixtures.values(ref.tensor(n)), b = MergeFixtures.values(ours.tensor(n));
                assertEquals(a.length, b.length, n);
                for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-5, n + "[" + i + "]");
            }
        }
    }

    @Test
    void aimWithCalibrationInTheConfigCalibratesTheBase() throws Exception {
        Path out = dir.resolve("cal");
        String aim = "aim:\n  omega: 0.4\n  calibration: {data: " + zoo.resolve("data/general_calib_blocks.jsonl").toAbsolutePath() + ", samples: 16}\n";
        MergeFixtures.Run r = MergeFixtures.cli("merge", taConfig(aim).toString(), out.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        JsonNode a = eval(out);
        assertEquals(scores.at("/task_arithmetic(w=1)+aim(omega=0.4)/general_loss").asDouble(), a.at("/text/mean_nll").asDouble(), 2e-3);
        assertTrue(Files.exists(out.resolve("README.md")));
    }
}
