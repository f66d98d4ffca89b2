package dev.mergeforge.cli;

import dev.mergeforge.run.MergeFixtures;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What every refused merge must look like through the CLI: the right exit code, exactly one stderr
 * line "error: ..." naming what is at fault, no stack trace, an {@code error} event with
 * {@code --events json}, nothing at OUTPUT_DIR, no temporary directory beside it, and the inputs
 * byte for byte as they were.
 */
final class CliFailure {
    private CliFailure() {}

    /** SHA-256 of every regular file under the given roots (links followed for content, keyed by path). */
    static Map<String, String> hashes(Path... roots) {
        Map<String, String> out = new TreeMap<>();
        for (Path root : roots) {
            if (!Files.exists(root)) continue;
            try (var walk = Files.walk(root)) {
                for (Path p : walk.toList()) {
                    if (Files.isRegularFile(p)) out.put(p.toString(), sha256(Files.readAllBytes(p)));
                    else if (Files.isSymbolicLink(p)) out.put(p + " ->", String.valueOf(Files.readSymbolicLink(p)));
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return out;
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Runs `merge cfg out args...` twice (plain and with --events json) and checks both fail cleanly. */
    static MergeFixtures.Run mergeFails(int exit, Path cfg, Path out, List<Path> inputs, List<String> extra, String... mustContain) {
        Map<String, String> before = hashes(inputs.toArray(Path[]::new));
        List<String> args = new ArrayList<>(List.of("merge", cfg.toString(), out.toString(), "-q"));
        args.addAll(extra);
        MergeFixtures.Run r = MergeFixtures.cli(args.toArray(String[]::new));
        assertOneLine(r, exit, mustContain);
        assertNothingWritten(out);
        args.remove("-q");
        args.addAll(List.of("--events", "json"));
        MergeFixtures.Run ev = MergeFixtures.cli(args.toArray(String[]::new));
        assertOneLine(ev, exit, mustContain);
        assertTrue(ev.out().lines().anyMatch(l -> l.contains("\"event\":\"error\"")), "an error event on stdout: " + ev.out());
        assertNothingWritten(out);
        assertEquals(before, hashes(inputs.toArray(Path[]::new)), "inputs unchanged");
        return r;
    }

    /** Exit code, one "error: " line on stderr containing every given fragment, no stack trace. */
    static void assertOneLine(MergeFixtures.Run r, int exit, String... mustContain) {
        assertEquals(exit, r.exit(), "exit code; stderr: " + r.err());
        List<String> lines = r.err().lines().toList();
        assertEquals(1, lines.size(), "exactly one line on stderr: " + r.err());
        String line = lines.getFirst();
        assertTrue(line.startsWith("error: "), line);
        assertFalse(line.contains("internal error"), "a user error, not a bug: " + line);
        assertFalse(line.contains("Exception") || line.contains("\tat "), "no Java exception text: " + line);
        for (String s : mustContain) assertTrue(line.contains(s), "'" + s + "' in: " + line);
    }

    /** Nothing at out and no mergeforge temporary directory beside it. */
    static void assertNothingWritten(Path out) {
        assertFalse(Files.exists(out), out + " must not exist");
        Path parent = out.toAbsolutePath().getParent();
        if (!Files.isDirectory(parent)) return;
        try (var s = Files.list(parent)) {
            List<String> left = s.map(p -> p.getFileName().toString()).filter(n -> n.contains(".mergeforge-")).toList();
            assertTrue(left.isEmpty(), "temporary directories left beside " + out + ": " + left);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
