package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SIGTERM or SIGINT (Ctrl-C) in the middle of a real merge, in a child JVM: the merge dies, OUTPUT_DIR does not
 * appear, its temporary directory is removed by the shutdown hook, and the inputs are unchanged.
 */
class InterruptTest {
    @TempDir Path dir;

    @Test
    @Timeout(90)
    void sigtermOrSigintMidMergeLeavesNoOutputAndNoTempDir() throws Exception {
        RandomModels.Builder b = RandomModels.builder().arch(Arch.LLAMA).hidden(256).intermediate(768).layers(20).heads(4).kvHeads(2)
                .vocab(2048).maxPositions(64).dtype(DType.BF16).seed(3);
        RandomModels.Family f = RandomModels.family(b, 2, 0.02, dir.resolve("models"));
        Path cfg = MergeFixtures.yaml(dir, "cfg.yml", """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 1.0, density: 0.5}
                  - model: %s
                    parameters: {weight: 1.0, density: 0.5}
                """.formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1)));
        Map<String, String> before = CliFailure.hashes(dir.resolve("models"));
        interrupt(cfg, dir.resolve("out-term"), false);
        interrupt(cfg, dir.resolve("out-int"), true);
        assertEquals(before, CliFailure.hashes(dir.resolve("models")), "inputs unchanged");
    }

    /** Starts the merge in a child JVM, signals it at its first tensor event (SIGINT or SIGTERM) and checks what is left. */
    private static void interrupt(Path cfg, Path out, boolean sigint) throws Exception {
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process p = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.mergeforge.cli.Main", "merge", cfg.toString(), out.toString(), "--events", "json", "--backend", "java",
                "--threads", "1").redirectError(ProcessBuilder.Redirect.DISCARD).start();
        long t0 = System.nanoTime();
        String tensorEvent = null;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                assertTrue(!line.contains("\"event\":\"done\""), "the merge finished before it could be interrupted: make the model bigger");
                if (line.contains("\"event\":\"tensor\"")) {
                    tensorEvent = line;
                    if (sigint) {
                        Process kill = new ProcessBuilder("kill", "-INT", Long.toString(p.pid())).start();
                        assertEquals(0, kill.waitFor(), "kill -INT");
                    } else {
                        p.destroy(); // SIGTERM
                    }
                    break;
                }
            }
            assertNotNull(tensorEvent, "a tensor event before the end of output");
            // exit 130/143 below, not 0, shows the merge did not outrun the signal
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "the child exits after the signal");
        } finally {
            p.destroyForcibly();
        }
        System.err.printf("interrupt test: %s after %.1f s, exit %d%n", sigint ? "SIGINT" : "SIGTERM", (System.nanoTime() - t0) / 1e9, p.exitValue());
        assertEquals(sigint ? 130 : 143, p.exitValue(), "killed by the signal (128 + signal number)");
        CliFailure.assertNothingWritten(out);
    }
}
