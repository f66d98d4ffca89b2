package dev.mergeforge.bench;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.fixtures.SliceModels;
import dev.mergeforge.io.OutputDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * `mergeforge bench --shape 70b|405b`: merges at real tensor shapes ({@link SliceModels}), base + N
 * fine-tunes in bf16 generated streaming into a work folder, each method on each backend in its own
 * JVM with the given {@code --max-memory}; reports time, peak RSS, bytes read and the I/O floor
 * measured in the same run, then deletes the models (unless kept). The inputs may exceed the page
 * cache: nothing is warmed, and the floor's first read is what the disk gives.
 */
public final class SliceBench {
    /** Headroom asked of the disk on top of the models, the output and the floor's scratch file. */
    private static final double DISK_MARGIN = 1.1;

    private SliceBench() {}

    /** What {@link #run} measured: the markdown report and where the models were (deleted unless kept). */
    public record Report(String markdown, Path models) {}

    /**
     * Runs the bench. {@code maxMemory} (null: the merge's default) is passed to every merge as
     * {@code --max-memory}. Fails with a one-line error before writing anything when the disk holding
     * {@code dir} lacks the room for the models, one output and the floor's scratch file.
     */
    public static Report run(SliceModels.Slice slice, int fineTunes, List<String> methods, List<String> backends, String maxMemory,
                             Path dir, boolean keep, long seed, PrintWriter log) {
        Path root = dir.resolve(String.format(Locale.ROOT, "slice-%s-x%s", slice.shape(), slice.scale()));
        requireSpace(dir, (long) (slice.bytes() * (fineTunes + 3L) * DISK_MARGIN), slice);
        Parallel par = new Parallel(0);
        try {
            OutputDir.deleteTree(root);
            log.printf("generating the %s slice (x%s): base + %d fine-tunes of %.2fB parameters, %.2f GB each (bf16), in %s%n",
                    slice.shape(), slice.scale(), fineTunes, slice.parameters() / 1e9, slice.bytes() / 1e9, root);
            log.flush();
            long t0 = System.nanoTime();
            RandomModels.Family f = SliceModels.family(slice, fineTunes, 0.002, root, par);
            log.printf("generated in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            Map<String, String> configs = EndToEnd.configs(f.base(), f.fineTunes());
            configs.keySet().retainAll(methods);
            List<Path> dirs = new ArrayList<>(f.fineTunes());
            dirs.add(f.base());
            IoFloor io = IoFloor.measure(Family.weightFiles(dirs), Family.weightBytes(f.base()), root);
            List<String> extra = maxMemory == null ? List.of() : List.of("--max-memory", maxMemory);
            List<EndToEnd.Row> rows = new ArrayList<>();
            List<Long> disk = new ArrayList<>();
            for (String m : methods) {
                Path cfg = root.resolve(m + ".yml");
                Files.writeString(cfg, configs.get(m));
                for (String be : backends) {
                    log.printf("merging with %s on %s ...%n", m, be);
                    log.flush();
                    Path out = root.resolve("out-" + m + "-" + be);
                    long before = ChildUsage.diskReadBytes();
                    rows.add(new EndToEnd.Row(m, be, ChildMerge.run(cfg, out, be, seed, extra)));
                    long after = ChildUsage.diskReadBytes();
                    disk.add(before < 0 || after < 0 ? -1 : after - before);
                    OutputDir.deleteTree(out);
                }
            }
            String head = String.format(Locale.ROOT, "## mergeforge bench --shape %s --scale %s: %d models of %.2fB parameters (%.2f GB bf16), "
                    + "--max-memory %s, %d cores%n%n", slice.shape(), slice.scale(), fineTunes + 1, slice.parameters() / 1e9,
                    slice.bytes() / 1e9, maxMemory == null ? "default" : maxMemory, Runtime.getRuntime().availableProcessors());
            return new Report(head + table(rows, disk, io), root);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the benchmark configs in " + root + ": " + e.getMessage(), e);
        } finally {
            par.shutdown();
            if (!keep) OutputDir.deleteTree(root);
        }
    }

    /** One-line error when the file system of {@code dir} has less than {@code need} bytes free. */
    static void requireSpace(Path dir, long need, SliceModels.Slice slice) {
        try {
            Files.createDirectories(dir);
            long free = Files.getFileStore(dir).getUsableSpace();
            if (free < need) {
                throw new ConfigException(String.format(Locale.ROOT, "bench --shape %s --scale %s needs %.1f GB free in %s, has %.1f GB;"
                        + " use a smaller --scale or a --dir on a larger disk", slice.shape(), slice.scale(), need / 1e9, dir, free / 1e9));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot use " + dir + " for the benchmark: " + e.getMessage(), e);
        }
    }

    /**
     * The table per method and backend: time, peak RSS and working set, the inputs' bytes (each read
     * once, as the merge's done event counts them), the bytes the merge process read from the disk
     * (getrusage of the finished child: a multi-pass method that re-reads evicted chunks shows more
     * than its inputs; page-cache hits show nothing), and the I/O floor (inputs read once at the
     * speed measured here, the output written).
     */
    static String table(List<EndToEnd.Row> rows, List<Long> diskRead, IoFloor io) {
        StringBuilder t = new StringBuilder();
        t.append("| method | backend | time (s) | peak RSS (MB) | working set (MB) | inputs (GB) | read from disk (GB) | written (GB) | I/O floor (s) | × I/O floor |\n");
        t.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < rows.size(); i++) {
            EndToEnd.Row r = rows.get(i);
            ChildMerge.Figures f = r.f();
            String disk = diskRead.get(i) < 0 ? "n/a" : String.format(Locale.ROOT, "%.3f", diskRead.get(i) / 1e9);
            double floor = io.seconds(f.bytesIn(), f.bytesOut());
            t.append(String.format(Locale.ROOT, "| %s | %s | %.2f | %.0f | %.0f | %.3f | %s | %.3f | %.3f | %.1f |%n", r.method(),
                    r.backend(), f.seconds(), f.peakRss() / 1e6, f.peakWorking() / 1e6, f.bytesIn() / 1e9, disk, f.bytesOut() / 1e9, floor, f.seconds() / floor));
        }
        t.append(String.format(Locale.ROOT, "%nI/O floor measured in this run: inputs read once through fresh mappings %.2f GB/s, with pread"
                + " %.2f GB/s (not warmed first: from disk where the page cache does not hold them); direct write %.2f GB/s%n",
                io.mappedReadBytesPerSecond() / 1e9, io.preadBytesPerSecond() / 1e9, io.writeBytesPerSecond() / 1e9));
        return t.toString();
    }
}
