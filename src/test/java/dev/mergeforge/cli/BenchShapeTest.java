package dev.mergeforge.cli;

import dev.mergeforge.fixtures.SliceModels;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `mergeforge bench --shape`: the same code path as a full 70B/405B slice run, on rows scaled down
 * so it takes seconds; each merge runs in its own JVM under the --max-memory given.
 */
class BenchShapeTest {
    @TempDir Path dir;

    /** The cells of the table row of {@code method} on {@code backend}. */
    private static String[] row(String out, String method, String backend) {
        String line = out.lines().filter(l -> l.startsWith("| " + method + " | " + backend + " |")).findFirst()
                .orElseThrow(() -> new AssertionError("no row for " + method + " on " + backend + " in\n" + out));
        return Stream.of(line.split("\\|")).map(String::trim).skip(1).toArray(String[]::new);
    }

    @Test
    void seventyBSliceRunsEachMethodUnderTheBudgetReportsAndDeletesItsFiles() throws Exception {
        double scale = 0.0005;
        MergeFixtures.Run r = MergeFixtures.cli("bench", "--shape", "70b", "--scale", String.valueOf(scale), "--methods", "linear,ties",
                "--backends", "java", "--max-memory", "512MB", "--dir", dir.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("--max-memory 512MB"), r.out());
        assertTrue(r.out().contains("I/O floor measured in this run"), r.out());
        long bytes = SliceModels.of("70b", scale).bytes();
        // linear reads the two fine-tunes, ties the base too; each writes one model
        String[] lin = row(r.out(), "linear", "java"), ties = row(r.out(), "ties", "java");
        assertEquals(String.format(Locale.ROOT, "%.3f", 2 * bytes / 1e9), lin[5], r.out());
        assertEquals(String.format(Locale.ROOT, "%.3f", 3 * bytes / 1e9), ties[5], r.out());
        assertEquals(String.format(Locale.ROOT, "%.3f", bytes / 1e9), ties[7], r.out());
        for (String[] c : new String[][] {lin, ties}) {
            assertTrue(Double.parseDouble(c[2]) > 0 && Double.parseDouble(c[3]) > 0 && Double.parseDouble(c[8]) > 0, String.join(" | ", c));
            // passes over the inputs that went to disk, and what the page cache held after (n/a where the calls are unavailable)
            assertTrue(c[10].equals("n/a") || Double.parseDouble(c[10]) >= 0, String.join(" | ", c));
            assertTrue(c[11].equals("n/a") || Double.parseDouble(c[11]) >= 0, String.join(" | ", c));
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(0, left.count(), "the generated models are deleted without --keep");
        }
    }

    @Test
    void keepLeavesTheModelsFor405b() {
        MergeFixtures.Run r = MergeFixtures.cli("bench", "--shape", "405b", "--scale", "0.0002", "--methods", "linear", "--backends", "java",
                "--keep", "--dir", dir.toString());
        assertEquals(0, r.exit(), r.err());
        row(r.out(), "linear", "java");
        Path root = dir.resolve("slice-405b-x2.0E-4");
        assertTrue(r.out().contains("models kept in " + root), r.out());
        for (String m : new String[] {"base", "ft1", "ft2"}) assertTrue(Files.isRegularFile(root.resolve(m).resolve("model.safetensors")), m);
        assertFalse(Files.exists(root.resolve("out-linear-java")), "outputs are deleted even with --keep");
        // a second --keep run merges the same models instead of generating them again
        MergeFixtures.Run again = MergeFixtures.cli("bench", "--shape", "405b", "--scale", "0.0002", "--methods", "linear", "--backends", "java",
                "--keep", "--dir", dir.toString());
        assertEquals(0, again.exit(), again.err());
        assertTrue(again.err().contains("reusing the 405b slice"), again.err());
        assertEquals(row(r.out(), "linear", "java")[5], row(again.out(), "linear", "java")[5]);
    }

    @Test
    void mergekitWithoutMergekitIsAOneLineErrorBeforeAnythingIsGenerated() throws Exception {
        Path fake = dir.resolve("python-without-mergekit");
        Files.writeString(fake, "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'mergekit'\" >&2\nexit 1\n");
        assertTrue(fake.toFile().setExecutable(true));
        Path work = dir.resolve("work");
        String[][] cases = {
                {"cannot import mergekit (ModuleNotFoundError: No module named 'mergekit')", fake.toString()},
                {"cannot be started", dir.resolve("no-such-python").toString()},
        };
        for (String[] c : cases) {
            for (String[] shape : new String[][] {{"--shape", "70b", "--scale", "0.0005"}, {"--params", "1000000"}}) {
                List<String> args = new ArrayList<>(List.of("bench"));
                args.addAll(List.of(shape));
                args.addAll(List.of("--mergekit", c[1], "--dir", work.toString()));
                MergeFixtures.Run r = MergeFixtures.cli(args.toArray(String[]::new));
                assertEquals(2, r.exit(), r.err());
                assertTrue(r.err().contains("--mergekit " + c[1] + " " + c[0]), r.err());
                assertTrue(r.err().contains("pass --mergekit a Python interpreter with mergekit"), r.err());
                assertEquals(1, r.err().strip().lines().count(), r.err());
                assertFalse(Files.exists(work), "nothing generated before the check");
            }
        }
    }

    @Test
    void badOptionsAreOneLineErrors() {
        String[][] cases = {
                {"--shape must be one of [70b, 405b], got '7b'", "bench", "--shape", "7b"},
                {"--scale must be in (0, 1]", "bench", "--shape", "70b", "--scale", "2"},
                {"--scale, --max-memory and --keep go with --shape", "bench", "--max-memory", "1GB"},
                {"no benchmark config for 'nosuch'", "bench", "--shape", "70b", "--methods", "nosuch"},
                {"--max-memory", "bench", "--shape", "70b", "--max-memory", "1GB,lots"},
                {"--max-memory", "bench", "--shape", "70b", "--max-memory", "lots"},
        };
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 1, c.length);
            MergeFixtures.Run r = MergeFixtures.cli(args);
            assertEquals(2, r.exit(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().contains(c[0]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertFalse(r.err().contains("Exception"), r.err());
        }
    }
}
