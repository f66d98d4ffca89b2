package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.mergeforge.cli.Main", "merge", cfg.toString(), out.toString(), "--events", "json", "--backend", "java", "--threads", "1"));
        if (sigint && sigintIgnoredHere()) {
            // started as a background job of a non-interactive shell (as CI may start the build), this JVM and
            // its children find SIGINT ignored, and a JVM that finds it ignored keeps ignoring it (as a background
            // job should): the child gets SIGINT's default back so that the test sees what a terminal's Ctrl-C does
            Assumptions.assumeTrue(runs("env", "--default-signal=INT", "true"),
                    "SIGINT is ignored in this process (a background job) and `env --default-signal` (coreutils 8.31+) is missing to reset it for the child");
            cmd.addAll(0, List.of("env", "--default-signal=INT"));
        }
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
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

    /** Whether SIGINT is ignored in this process (bit 1 of SigIgn in /proc/self/status; false where there is none). */
    private static boolean sigintIgnoredHere() throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) return false;
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("SigIgn:")) return (Long.parseUnsignedLong(line.substring(7).strip(), 16) & (1L << 1)) != 0;
        }
        return false;
    }

    private static boolean runs(String... cmd) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        }
    }
}
