package dev.mergeforge.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.MergeforgeException;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs one merge in a fresh JVM (so its peak RSS is its own) with {@code --events json} and reads
 * the figures back from the {@code done} event.
 */
public final class ChildMerge {
    /** What one merge measured. */
    public record Figures(double seconds, long bytesIn, long bytesOut, long peakRss, long peakWorking) {}

    private ChildMerge() {}

    public static Figures run(Path config, Path out, String backend, long seed) {
        return run(config, out, backend, seed, List.of());
    }

    /** As {@link #run(Path, Path, String, long)}, with {@code extra} merge options (e.g. --max-memory SIZE). */
    public static Figures run(Path config, Path out, String backend, long seed, List<String> extra) {
        return run(config, out, backend, seed, extra, 1L << 30);
    }

    /** As above with a Java heap of at most {@code heapBytes} (RegMean's float64 Grams live on the heap). */
    public static Figures run(Path config, Path out, String backend, long seed, List<String> extra, long heapBytes) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("-Xmx" + (heapBytes + (1L << 20) - 1) / (1L << 20) + "m");
        cmd.add("-XX:+UseParallelGC");
        // the launcher's young generation (scripts/launcher.sh), which the memory budget's fixed part assumes
        cmd.add("-Xmn32m");
        String lib = System.getProperty("mergeforge.native.lib");
        if (lib != null) cmd.add("-Dmergeforge.native.lib=" + lib);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("dev.mergeforge.cli.Main");
        cmd.addAll(List.of("merge", config.toString(), out.toString(), "--events", "json", "--overwrite", "--backend", backend,
                "--seed", Long.toString(seed)));
        cmd.addAll(extra);
        ObjectMapper json = new ObjectMapper();
        try {
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            JsonNode done = null, error = null;
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    JsonNode n = json.readTree(line);
                    String kind = n.path("event").asText();
                    if (kind.equals("done")) done = n;
                    if (kind.equals("error")) error = n;
                }
            }
            int rc = p.waitFor();
            if (rc != 0 || done == null) {
                throw new MergeforgeException("benchmark merge of " + config + " on " + backend + " failed (exit " + rc + ")"
                        + (error != null ? ": " + error.path("message").asText() : ""));
            }
            return new Figures(done.path("seconds").asDouble(), done.path("bytes_in").asLong(), done.path("bytes_out").asLong(),
                    done.path("peak_rss_bytes").asLong(), done.path("peak_working_bytes").asLong());
        } catch (IOException e) {
            throw new MergeforgeException("cannot start a merge process for the benchmark: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MergeforgeException("benchmark interrupted");
        }
    }
}
