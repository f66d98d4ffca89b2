package dev.mergeforge.cli;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.bench.CopyBandwidth;
import dev.mergeforge.bench.IoFloor;
import dev.mergeforge.bench.EndToEnd;
import dev.mergeforge.bench.Family;
import dev.mergeforge.bench.MergekitRun;
import dev.mergeforge.bench.MethodConfigs;
import dev.mergeforge.bench.SliceBench;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.fixtures.SliceModels;
import dev.mergeforge.merge.MethodRegistry;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * `mergeforge bench`: end-to-end merge benchmark on generated bf16 Llama checkpoints (default ~1B
 * parameters, base + 2 fine-tunes): time, GB/s and peak RSS per method and backend, the floor
 * (bytes moved ÷ copy bandwidth measured in the same run) and, with --mergekit, mergekit's figures.
 */
@Command(mixinStandardHelpOptions = true, name = "bench", description = "End-to-end merge benchmark on generated checkpoints (time, GB/s, peak RSS, floor; optionally mergekit).")
final class BenchCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--params", defaultValue = "1000000000", description = "Approximate parameters per model (default 1B).")
    long params;

    @Option(names = "--fine-tunes", defaultValue = "2", description = "Fine-tunes of the base (default 2).")
    int fineTunes;

    @Option(names = "--methods", split = ",", description = "Methods to run (default: linear, task_arithmetic, ties, dare_ties, breadcrumbs, slerp).")
    List<String> methods;

    @Option(names = "--backends", split = ",", description = "Backends (default: every available one).")
    List<String> backends;

    @Option(names = "--mergekit", paramLabel = "PYTHON", description = "A Python interpreter with mergekit installed (a throwaway venv outside the repo).")
    String mergekit;

    @Option(names = "--dir", defaultValue = "target/bench", description = "Work folder for models and outputs (default target/bench).")
    Path dir;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random methods.")
    long seed;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    @Option(names = "--shape", paramLabel = "70b|405b", description = "Bench a slice of a 70B or 405B checkpoint at its real tensor shapes instead of a --params family (bench/SliceBench; default methods linear, ties).")
    String shape;

    @Option(names = "--scale", defaultValue = "1", description = "With --shape: multiply every matrix's row count by this (0 < F <= 1; e.g. 0.01 for a quick run).")
    double scale;

    @Option(names = "--max-memory", paramLabel = "SIZE[,SIZE...]", description = "With --shape: passed to every merge as its --max-memory (default: the merge's own default); several, comma-separated (`default` for the merge's own), run one after the other on the same models.")
    String maxMemory;

    @Option(names = "--keep", description = "With --shape: keep the generated models in --dir (default: deleted at the end), and reuse those a previous --keep run left there.")
    boolean keep;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (fineTunes < 1) throw new ConfigException("--fine-tunes must be >= 1, got " + fineTunes);
        if (mergekit != null) MergekitRun.check(mergekit); // before anything is generated
        if (shape != null) return slice(out, err);
        if (maxMemory != null || keep || scale != 1) throw new ConfigException("--scale, --max-memory and --keep go with --shape 70b|405b");
        Parallel par = new Parallel(0);
        try {
            RandomModels.Builder b = Family.shapeFor(params, par);
            RandomModels.Family f = Family.ensure(b, fineTunes, dir.resolve("models-" + params), err);
            Map<String, String> all = EndToEnd.configs(f.base(), f.fineTunes());
            Map<String, String> configs = new LinkedHashMap<>();
            for (var e : all.entrySet()) {
                boolean registered = MethodRegistry.all().stream().anyMatch(s -> s.name().equals(e.getKey()));
                if ((methods == null || methods.contains(e.getKey())) && registered) configs.put(e.getKey(), e.getValue());
            }
            if (methods != null) {
                for (String m : methods) if (!configs.containsKey(m)) throw new ConfigException("--methods: no benchmark config for '" + m + "'; choose from " + all.keySet());
            }
            double bw = CopyBandwidth.measure(512L << 20);
            List<Path> dirs = new java.util.ArrayList<>(f.fineTunes());
            dirs.add(f.base());
            Family.warm(dirs); // inputs in the page cache, as the floors assume
            IoFloor io = IoFloor.measure(Family.weightFiles(dirs), Family.weightBytes(f.base()), dir);
            List<EndToEnd.Row> rows = EndToEnd.run(configs, backends != null ? backends : DemoCommand.available(), dir.resolve("runs"), seed, mergekit, err);
            out.printf("## mergeforge bench: %d models of %.2fB parameters (bf16), %d cores%n%n", fineTunes + 1, b.parameters() / 1e9,
                    Runtime.getRuntime().availableProcessors());
            out.print(EndToEnd.table(rows, bw, io));
            out.flush();
            return 0;
        } finally {
            par.shutdown();
        }
    }

    /** `bench --shape`: the slice family, merged once per method and backend under --max-memory. */
    private int slice(PrintWriter out, PrintWriter err) {
        SliceModels.Slice s;
        try {
            s = SliceModels.of(shape, scale);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
        // several budgets, comma-separated, run one after the other on the same models ("default": the merge's own)
        List<String> budgets = new java.util.ArrayList<>();
        for (String b : maxMemory == null ? new String[] {"default"} : maxMemory.split(",")) {
            if (b.strip().equals("default")) budgets.add(null);
            else {
                Sizes.parse("--max-memory", b.strip()); // a bad size is an error before anything is generated
                budgets.add(b.strip());
            }
        }
        List<String> known = new java.util.ArrayList<>(MethodConfigs.all(Path.of("base"), List.of(Path.of("ft1"), Path.of("ft2"))).keySet());
        // fisher and regmean on the slice read synthetic statistics the bench writes (bench/SliceBench)
        known.addAll(MethodConfigs.STATS_METHODS);
        List<String> ms = methods == null ? List.of("linear", "ties") : methods.equals(List.of("all")) ? known : methods;
        for (String m : ms) if (!known.contains(m)) throw new ConfigException("--methods: no benchmark config for '" + m + "'; choose from " + known + " or all");
        SliceBench.Report r = SliceBench.run(s, fineTunes, ms, backends != null ? backends : DemoCommand.available(), budgets, mergekit, dir, keep,
                seed, err);
        out.print(r.markdown());
        if (keep) out.printf("%nmodels kept in %s%n", r.models());
        out.flush();
        return 0;
    }
}
