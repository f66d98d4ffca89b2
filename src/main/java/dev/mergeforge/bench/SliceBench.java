package dev.mergeforge.bench;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.fixtures.SliceModels;
import dev.mergeforge.fixtures.StatsFiles;
import dev.mergeforge.merge.methods.RegMean;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.io.OutputDir;
import dev.mergeforge.io.PageCache;
import dev.mergeforge.run.MemoryBudget;

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
     * Runs the bench under one budget ({@code maxMemory}, null: the merge's default). See
     * {@link #run(SliceModels.Slice, int, List, List, List, String, Path, boolean, long, PrintWriter)}.
     */
    public static Report run(SliceModels.Slice slice, int fineTunes, List<String> methods, List<String> backends, String maxMemory,
                             Path dir, boolean keep, long seed, PrintWriter log) {
        return run(slice, fineTunes, methods, backends, java.util.Collections.singletonList(maxMemory), null, dir, keep, seed, log);
    }

    /**
     * Runs the bench: the models generated once, then for each budget (passed to every merge as
     * {@code --max-memory}; a null entry: the merge's default) each method on each backend, and with
     * {@code mergekitPython} mergekit on the same config (once, under the first budget: it has none).
     * Before each merge the inputs are dropped from the page cache, so every merge starts cold and
     * its disk reads count every pass that had to go to disk. A merge that fails (a budget too small
     * for a method not yet streamed) is a row saying why, not the end of the bench. Fails with a
     * one-line error before writing anything when the disk holding {@code dir} lacks the room for the
     * models, one output and the floor's scratch file.
     */
    public static Report run(SliceModels.Slice slice, int fineTunes, List<String> methods, List<String> backends, List<String> budgets,
                             String mergekitPython, Path dir, boolean keep, long seed, PrintWriter log) {
        Path root = dir.resolve(String.format(Locale.ROOT, "slice-%s-x%s", slice.shape(), slice.scale()));
        RandomModels.Family kept = keep ? existing(slice, fineTunes, root) : null;
        // fisher: a bf16 Fisher file per fine-tune, the size of its model
        long statsBytes = methods.contains("fisher") ? slice.bytes() * fineTunes : 0;
        if (methods.contains("regmean")) statsBytes += 4L * widestGram(slice) * widestGram(slice) * 3 * fineTunes;
        // models a previous --keep run left are already on the disk: then only the output, the floor's scratch file and statistics need room
        requireSpace(dir, (long) ((slice.bytes() * (kept != null ? 2L : fineTunes + 3L) + statsBytes) * DISK_MARGIN), slice);
        Parallel par = new Parallel(0);
        try {
            RandomModels.Family f = kept;
            if (f != null) {
                log.printf("reusing the %s slice (x%s) a previous --keep run left in %s%n", slice.shape(), slice.scale(), root);
            } else {
                OutputDir.deleteTree(root);
                log.printf("generating the %s slice (x%s): base + %d fine-tunes of %.2fB parameters, %.2f GB each (bf16), in %s%n",
                        slice.shape(), slice.scale(), fineTunes, slice.parameters() / 1e9, slice.bytes() / 1e9, root);
                log.flush();
                long t0 = System.nanoTime();
                f = SliceModels.family(slice, fineTunes, 0.002, root, par);
                log.printf("generated in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            }
            Map<String, String> configs = MethodConfigs.all(f.base(), f.fineTunes());
            configs.keySet().retainAll(methods);
            long heap = 1L << 30;
            for (String m : MethodConfigs.STATS_METHODS) {
                if (!methods.contains(m)) continue;
                configs.put(m, MethodConfigs.withStats(m, f.fineTunes(), statsFiles(m, f.fineTunes(), root, seed, log)));
                // RegMean's Grams in float64 live on the heap, outside the budget: room for the largest beside the default heap
                if (m.equals("regmean")) heap += RegMean.gramBytes(widestGram(slice));
            }
            long regmeanHeap = heap;
            List<Path> dirs = new ArrayList<>(f.fineTunes());
            dirs.add(f.base());
            List<Path> files = Family.weightFiles(dirs);
            IoFloor io = IoFloor.measure(files, Family.weightBytes(f.base()), root);
            StringBuilder md = new StringBuilder();
            for (int b = 0; b < budgets.size(); b++) {
                String maxMemory = budgets.get(b);
                // the default passed explicitly: a merge that cannot run under it fails, instead of raising it past the machine
                List<String> extra = List.of("--max-memory", maxMemory == null ? Long.toString(MemoryBudget.defaultBytes()) : maxMemory);
                List<Measured> rows = new ArrayList<>();
                for (String m : methods) {
                    Path cfg = root.resolve(m + ".yml");
                    Files.writeString(cfg, configs.get(m));
                    for (String be : backends) {
                        log.printf("merging with %s on %s (--max-memory %s) ...%n", m, be, maxMemory == null ? "default" : maxMemory);
                        log.flush();
                        Path out = root.resolve("out-" + m + "-" + be);
                        rows.add(measure(m, be, files, log, () -> ChildMerge.run(cfg, out, be, seed, extra, m.equals("regmean") ? regmeanHeap : 1L << 30)));
                        OutputDir.deleteTree(out);
                    }
                    if (mergekitPython != null && b == 0) {
                        log.printf("merging with %s on mergekit ...%n", m);
                        log.flush();
                        Path out = root.resolve("out-" + m + "-mergekit");
                        long in = rows.getLast().f() != null ? rows.getLast().f().bytesIn() : 0, written = slice.bytes();
                        rows.add(measure(m, "mergekit", files, log, () -> MergekitRun.run(mergekitPython, cfg, out, in, written)));
                        OutputDir.deleteTree(out);
                    }
                }
                md.append(String.format(Locale.ROOT, "## mergeforge bench --shape %s --scale %s: %d models of %.2fB parameters (%.2f GB bf16), "
                        + "--max-memory %s, %d cores%n%n", slice.shape(), slice.scale(), fineTunes + 1, slice.parameters() / 1e9,
                        slice.bytes() / 1e9, maxMemory == null ? String.format(Locale.ROOT, "default (%.2f GiB)", MemoryBudget.defaultBytes() / (double) (1L << 30))
                                : maxMemory, Runtime.getRuntime().availableProcessors()));
                md.append(table(rows, io)).append(b + 1 < budgets.size() ? "\n" : "");
            }
            return new Report(md.toString(), root);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the benchmark configs in " + root + ": " + e.getMessage(), e);
        } finally {
            par.shutdown();
            if (!keep) OutputDir.deleteTree(root);
        }
    }

    /**
     * Weights of the slice that get a Gram in the bench: the attention and gate/up projections (input
     * width the hidden size), not down_proj (a Gram of its MLP width, 28672² for 70B: 3.3 GB per model
     * in float32 and three times that in float64 to solve) nor the embedding and head.
     */
    static boolean benchGram(String name) {
        return name.contains(".self_attn.") || name.contains(".mlp.gate_proj.") || name.contains(".mlp.up_proj.");
    }

    /** The widest input of a weight the bench gives a Gram. */
    static long widestGram(SliceModels.Slice slice) {
        long in = 0;
        for (var t : slice.tensors()) if (t.shape().rank() == 2 && benchGram(t.name())) in = Math.max(in, t.shape().dim(1));
        return in;
    }

    /**
     * Synthetic statistics for fine-tune j ({@link StatsFiles}): bf16 Fisher files of the slice's
     * tensors or float32 Grams of {@link #benchGram} weights, written once into {@code root} (kept with
     * the models under --keep).
     */
    static List<Path> statsFiles(String method, List<Path> fineTunes, Path root, long seed, PrintWriter log) {
        List<Path> out = new ArrayList<>();
        for (int j = 0; j < fineTunes.size(); j++) {
            Path p = root.resolve(method + "-stats-ft" + (j + 1) + ".safetensors");
            if (!Files.isRegularFile(p)) {
                long t0 = System.nanoTime();
                if (method.equals("fisher")) StatsFiles.fisher(fineTunes.get(j), p, DType.BF16, seed + j);
                else StatsFiles.grams(fineTunes.get(j), p, seed + j, SliceBench::benchGram);
                log.printf(Locale.ROOT, "generated %s in %.1f s%n", p.getFileName(), (System.nanoTime() - t0) / 1e9);
                log.flush();
            }
            out.add(p);
        }
        return out;
    }

    /**
     * The family a previous {@code --keep} run left in {@code root}, when every model is there whole
     * (each opens and holds the slice's bytes); null otherwise.
     */
    static RandomModels.Family existing(SliceModels.Slice slice, int fineTunes, Path root) {
        List<Path> fts = new ArrayList<>();
        for (int j = 1; j <= fineTunes; j++) fts.add(root.resolve("ft" + j));
        List<Path> all = new ArrayList<>(fts);
        all.add(root.resolve("base"));
        for (Path d : all) {
            if (!Files.isDirectory(d)) return null;
            try (dev.mergeforge.io.Checkpoint c = dev.mergeforge.io.Checkpoint.open(d)) {
                if (c.totalBytes() != slice.bytes()) return null;
            } catch (RuntimeException e) {
                return null;
            }
        }
        return new RandomModels.Family(root.resolve("base"), fts);
    }

    /**
     * One measured merge: {@code f} null and {@code failure} set when it failed; the bytes it read
     * from disk (-1: unknown) and the bytes of the inputs the page cache holds after it (-1: unknown).
     */
    record Measured(String method, String backend, ChildMerge.Figures f, long diskRead, long cachedAfter, String failure) {}

    /** Runs one merge from cold inputs, logging its figures as soon as it ends. */
    private static Measured measure(String method, String backend, List<Path> inputs, PrintWriter log,
                                    java.util.function.Supplier<ChildMerge.Figures> merge) {
        for (Path p : inputs) dropFromCache(p);
        long before = ChildUsage.diskReadBytes();
        ChildMerge.Figures f = null;
        String failure = null;
        try {
            f = merge.get();
        } catch (MergeforgeException e) {
            failure = e.getMessage();
        }
        long after = ChildUsage.diskReadBytes();
        long disk = before < 0 || after < 0 ? -1 : after - before;
        long cached = 0;
        for (Path p : inputs) {
            long r = PageCache.residentBytes(p);
            cached = r < 0 || cached < 0 ? -1 : cached + r;
        }
        if (f != null) {
            log.printf(Locale.ROOT, "  %.1f s, peak RSS %.0f MB, read from disk %.2f GB, inputs cached after %.2f GB%n", f.seconds(),
                    f.peakRss() / 1e6, disk / 1e9, cached / 1e9);
        } else {
            log.printf("  failed: %s%n", failure);
        }
        log.flush();
        return new Measured(method, backend, f, disk, cached, failure);
    }

    /** Drops a file's pages from the page cache (a cold start for the next merge); a hint where unavailable. */
    static void dropFromCache(Path p) {
        int fd = PageCache.open(p);
        try {
            long size = Files.size(p);
            PageCache.writeBack(fd, 0, size, true);
            PageCache.dropRange(fd, 0, size + PageCache.PAGE_SIZE);
        } catch (IOException e) {
            // a hint: the merge still runs, from whatever the cache holds
        } finally {
            PageCache.close(fd);
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
     * than its inputs; page-cache hits show nothing) and that as passes over the inputs, the I/O floor
     * (inputs read once at the speed measured here, the output written), and how much of the inputs
     * the page cache still held after the merge (mincore: what drop-behind left). A failed merge is a
     * row with its one-line error in the last column.
     */
    static String table(List<Measured> rows, IoFloor io) {
        StringBuilder t = new StringBuilder();
        t.append("| method | backend | time (s) | peak RSS (MB) | working set (MB) | inputs (GB) | read from disk (GB) | written (GB) | I/O floor (s) | × I/O floor | disk reads ÷ inputs | inputs cached after (GB) |\n");
        t.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (Measured r : rows) {
            ChildMerge.Figures f = r.f();
            if (f == null) {
                t.append(String.format(Locale.ROOT, "| %s | %s | – | – | – | – | – | – | – | – | – | failed: %s |%n", r.method(), r.backend(),
                        r.failure().replace('|', '/')));
                continue;
            }
            String disk = r.diskRead() < 0 ? "n/a" : String.format(Locale.ROOT, "%.3f", r.diskRead() / 1e9);
            String passes = r.diskRead() < 0 || f.bytesIn() == 0 ? "n/a" : String.format(Locale.ROOT, "%.2f", (double) r.diskRead() / f.bytesIn());
            String cached = r.cachedAfter() < 0 ? "n/a" : String.format(Locale.ROOT, "%.3f", r.cachedAfter() / 1e9);
            double floor = io.seconds(f.bytesIn(), f.bytesOut());
            t.append(String.format(Locale.ROOT, "| %s | %s | %.2f | %.0f | %.0f | %.3f | %s | %.3f | %.3f | %.1f | %s | %s |%n", r.method(),
                    r.backend(), f.seconds(), f.peakRss() / 1e6, f.peakWorking() / 1e6, f.bytesIn() / 1e9, disk, f.bytesOut() / 1e9, floor,
                    f.seconds() / floor, passes, cached));
        }
        t.append(String.format(Locale.ROOT, "%nI/O floor measured in this run: inputs read once through fresh mappings %.2f GB/s, with pread"
                + " %.2f GB/s (not warmed first: from disk where the page cache does not hold them); direct write %.2f GB/s."
                + " Every merge starts with its inputs dropped from the page cache.%n",
                io.mappedReadBytesPerSecond() / 1e9, io.preadBytesPerSecond() / 1e9, io.writeBytesPerSecond() / 1e9));
        return t.toString();
    }
}
