package dev.mergeforge.bench;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * End-to-end merge benchmark shared by `mergeforge demo` and `mergeforge bench`: a family of
 * random checkpoints, one mergekit-style config per method, each merge run in its own JVM per
 * backend, and a markdown table of time, throughput and memory against the copy-bandwidth floor.
 */
public final class EndToEnd {
    /** One measured merge. */
    public record Row(String method, String backend, ChildMerge.Figures f) {}

    private EndToEnd() {}

    /** mergekit YAML for each benchmarked method over base + fine-tunes (paths absolute). */
    public static Map<String, String> configs(Path base, List<Path> fineTunes) {
        Map<String, String> c = new LinkedHashMap<>();
        c.put("linear", models("linear", null, fineTunes, "weight: 1.0", ""));
        c.put("task_arithmetic", models("task_arithmetic", base, fineTunes, "weight: 1.0", ""));
        c.put("ties", models("ties", base, fineTunes, "weight: 1.0\n      density: 0.5", ""));
        c.put("dare_ties", models("dare_ties", base, fineTunes, "weight: 1.0\n      density: 0.5", ""));
        c.put("breadcrumbs", models("breadcrumbs", base, fineTunes, "weight: 1.0\n      density: 0.9\n      gamma: 0.01", ""));
        if (!fineTunes.isEmpty()) {
            c.put("slerp", "merge_method: slerp\nbase_model: " + base + "\nmodels:\n  - model: " + base + "\n  - model: "
                    + fineTunes.getFirst() + "\nparameters:\n  t: 0.5\ndtype: bfloat16\n");
        }
        return c;
    }

    private static String models(String method, Path base, List<Path> fts, String params, String global) {
        return MethodConfigs.models(method, base, fts, params, global);
    }

    /** Runs every config on every backend, each in a fresh JVM; with {@code mergekitPython}, mergekit on the same config too. */
    public static List<Row> run(Map<String, String> configs, List<String> backends, Path work, long seed, PrintWriter log) {
        return run(configs, backends, work, seed, null, log);
    }

    public static List<Row> run(Map<String, String> configs, List<String> backends, Path work, long seed, String mergekitPython,
                                PrintWriter log) {
        List<Row> rows = new ArrayList<>();
        try {
            Files.createDirectories(work);
            for (var e : configs.entrySet()) {
                Path cfg = work.resolve(e.getKey() + ".yml");
                Files.writeString(cfg, e.getValue());
                for (String be : backends) {
                    log.printf("merging with %s on %s ...%n", e.getKey(), be);
                    log.flush();
                    Path out = work.resolve("out-" + e.getKey() + "-" + be);
                    rows.add(new Row(e.getKey(), be, ChildMerge.run(cfg, out, be, seed)));
                    dev.mergeforge.io.OutputDir.deleteTree(out);
                }
                if (mergekitPython != null) {
                    log.printf("merging with %s on mergekit ...%n", e.getKey());
                    log.flush();
                    Path out = work.resolve("out-" + e.getKey() + "-mergekit");
                    ChildMerge.Figures ours = rows.getLast().f();
                    rows.add(new Row(e.getKey(), "mergekit", MergekitRun.run(mergekitPython, cfg, out, ours.bytesIn(), ours.bytesOut())));
                    dev.mergeforge.io.OutputDir.deleteTree(out);
                }
            }
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return rows;
    }

    /**
     * The markdown table: time, GB/s read, both floors and their ratios, peak RSS and working memory
     * per method and backend. {@code io} may be null (then no I/O floor columns).
     */
    public static String table(List<Row> rows, double copyBytesPerSecond, IoFloor io) {
        StringBuilder t = new StringBuilder();
        t.append("| method | backend | time (s) | read GB/s | copy floor (s) | × copy floor |");
        if (io != null) t.append(" I/O floor (s) | × I/O floor |");
        t.append(" peak RSS (MB) | working set (MB) |\n");
        t.append(io != null ? "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n" : "|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            ChildMerge.Figures f = r.f();
            // copy floor: every byte read once and written once at hot memory-copy speed
            double floor = (f.bytesIn() + f.bytesOut()) / copyBytesPerSecond;
            t.append(String.format(Locale.ROOT, "| %s | %s | %.2f | %.2f | %.3f | %.1f |", r.method(), r.backend(), f.seconds(),
                    f.bytesIn() / 1e9 / f.seconds(), floor, f.seconds() / floor));
            if (io != null) {
                // I/O floor: the inputs read once from fresh mappings, the output written to disk, overlapped
                double iof = io.seconds(f.bytesIn(), f.bytesOut());
                t.append(String.format(Locale.ROOT, " %.3f | %.1f |", iof, f.seconds() / iof));
            }
            t.append(String.format(Locale.ROOT, " %.0f | %.0f |%n", f.peakRss() / 1e6, f.peakWorking() / 1e6));
        }
        t.append(String.format(Locale.ROOT, "%ncopy bandwidth measured in this run: %.2f GB/s (bytes read + written per second)%n",
                copyBytesPerSecond / 1e9));
        if (io != null) {
            t.append(String.format(Locale.ROOT, "inputs read once from the page cache: %.2f GB/s through fresh mappings, %.2f GB/s with pread"
                    + " (all cores each); direct write to the output disk: %.2f GB/s%n",
                    io.mappedReadBytesPerSecond() / 1e9, io.preadBytesPerSecond() / 1e9, io.writeBytesPerSecond() / 1e9));
        }
        return t.toString();
    }
}
