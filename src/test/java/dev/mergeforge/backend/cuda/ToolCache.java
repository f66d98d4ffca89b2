package dev.mergeforge.backend.cuda;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * What the tests made with an external tool (g++ builds of the emulator, its self-test, its
 * ThreadSanitizer and mutant variants; ptxas verdicts), kept in target/ and redone only when an
 * input changes. The key is a SHA-256 over the tool's own version text, the whole command line and
 * the path and bytes of every input file (the kernel tree a build includes from); it is written
 * next to the output ({@code out.key}) after the tool succeeded, and removed before it runs again,
 * so an interrupted or failed run is never taken for a result. Same key, same output: nothing the
 * tests check is skipped, only remade. {@code make clean} (or deleting target/test-native) empties it.
 */
final class ToolCache {
    private static final Map<String, String> VERSIONS = new ConcurrentHashMap<>();

    private ToolCache() { }

    /** The key of running {@code command} over {@code inputs} (files, or folders taken whole). */
    static String key(List<String> command, List<Path> inputs) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            add(md, version(command.getFirst()));
            for (String a : command) add(md, a);
            for (Path in : inputs) {
                List<Path> files;
                try (Stream<Path> walk = Files.walk(in)) {
                    files = walk.filter(Files::isRegularFile).sorted().toList();
                }
                for (Path f : files) {
                    add(md, f.toString());
                    md.update(Files.readAllBytes(f));
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether out exists and was made by the run whose key is {@code key}. */
    static boolean fresh(Path out, String key) {
        Path k = keyFile(out);
        try {
            return Files.exists(out) && Files.isRegularFile(k) && Files.readString(k).equals(key);
        } catch (IOException e) {
            return false;
        }
    }

    /** Before the tool runs again on out: whatever out holds no longer counts. */
    static void forget(Path out) throws IOException { Files.deleteIfExists(keyFile(out)); }

    /** After the tool succeeded: out is the result of the run with this key. */
    static void remember(Path out, String key) throws IOException { Files.writeString(keyFile(out), key); }

    private static Path keyFile(Path out) { return out.resolveSibling(out.getFileName() + ".key"); }

    private static void add(MessageDigest md, String s) {
        md.update(s.getBytes(StandardCharsets.UTF_8));
        md.update((byte) 0);
    }

    /** The tool's {@code --version} output (its path and release), asked once per JVM. */
    private static String version(String tool) {
        return VERSIONS.computeIfAbsent(tool, t -> {
            try {
                Process p = new ProcessBuilder(t, "--version").redirectErrorStream(true).start();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                p.waitFor();
                return t + "\n" + out;
            } catch (IOException e) {
                return t + ": " + e.getMessage();   // the build itself then reports the missing tool
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return t;
            }
        });
    }
}
