package dev.mergeforge.cli;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.io.OutputDir;
import dev.mergeforge.io.ShardPlan;
import dev.mergeforge.run.Events;
import dev.mergeforge.run.MemoryBudget;
import dev.mergeforge.run.Merger;
import dev.mergeforge.run.Planner;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** `mergeforge merge CONFIG OUTPUT_DIR`: run a mergekit-style YAML merge. */
@Command(mixinStandardHelpOptions = true, name = "merge", description = "Merge the models of a mergekit YAML config into OUTPUT_DIR.")
final class MergeCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "CONFIG", description = "mergekit YAML config (plus mergeforge's aim: and calibration: keys).")
    Path config;

    @Parameters(index = "1", paramLabel = "OUTPUT_DIR", description = "Where the merged model is written (atomically).")
    Path output;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random methods (DARE, DELLA, ...).")
    long seed;

    @Option(names = "--out-shard-size", defaultValue = "5GB", description = "Largest output shard (e.g. 5GB, 500MB, 2GiB).")
    String shardSize;

    @Option(names = "--dry-run", description = "Validate everything, print the plan and estimates, write nothing.")
    boolean dryRun;

    @Option(names = "--max-memory", paramLabel = "SIZE",
            description = "Memory the merge may use (e.g. 1GB, 800MB); chunk sizes follow from it. Default: a quarter of RAM, at most 2 GiB.")
    String maxMemory;

    @Option(names = "--allow-nonfinite", description = "Merge even if an input holds NaN or Inf.")
    boolean allowNonFinite;

    @Option(names = "--allow-crimes", description = "Merge models of different architectures (mergekit's flag): a warning instead of an error.")
    boolean allowCrimes;

    @Mixin OutputOptions outputOptions;

    @Mixin BackendOptions backendOptions;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Events ev = outputOptions.events(out, err);
        try {
            return run(out, err, ev);
        } catch (MergeforgeException e) {
            ev.error(e.getMessage(), e.exitCode());
            throw e;
        }
    }

    private int run(PrintWriter out, PrintWriter err, Events ev) {
        long maxShard = Sizes.parse("--out-shard-size", shardSize);
        MergeConfig cfg = ConfigReader.read(config);
        // valid mergekit keys we accept but do not act on are never ignored silently (docs/config.md)
        for (String key : dev.mergeforge.config.ConfigKeys.notActedOn(cfg.raw())) {
            err.println("warning: " + config + ": " + key + " is accepted for mergekit compatibility but changes nothing in mergeforge's output");
        }
        err.flush();
        try (Planner.Inputs inputs = new Planner.Inputs()) {
            if (allowCrimes) inputs.allowCrimes(m -> { err.println(m); err.flush(); });
            Planner.Plan plan = Planner.plan(cfg, inputs, dev.mergeforge.run.StatsLocator.calibrating(Calibration.cacheDir(), ev::note));
            long budget = maxMemory == null ? MemoryBudget.defaultBytes() : Sizes.parse("--max-memory", maxMemory);
            if (dryRun) {
                OutputDir.check(output, outputOptions.overwrite, inputs.all().stream().map(c -> c.dir()).toList());
                String be = backendOptions.backend;
                printPlan(out, plan, maxShard, MemoryBudget.estimate(plan, budget, maxMemory != null, !be.equals("cuda"), !be.equals("java"), cfg.aim() != null));
                return 0;
            }
            try (Backend backend = backendOptions.create();
                 AimRelaxer aim = AimSupport.relaxer(cfg, plan, inputs, backend, ev)) {
                if (outputOptions.chatty()) err.println("backend: " + backend.name());
                MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, budget, maxMemory != null, backend.chunkOps().isPresent(),
                        !backend.name().equals("java"), aim != null);
                Merger.run(plan, inputs, output, new Merger.Options(backend, seed, maxShard, outputOptions.overwrite, allowNonFinite, aim,
                        outputOptions.chatty() ? noteAfterStart(ev, mem.describe()) : ev,
                        Merger.FUSED_CHUNK, mem.chunkElements()));
            }
            return 0;
        }
    }

    /** The events of the merge with one note right after {@code start} (the stream must begin with start). */
    private static Events noteAfterStart(Events ev, String note) {
        return new Events() {
            @Override public void start(String method, int tensors, long bytesIn, long bytesOut, String backend) {
                ev.start(method, tensors, bytesIn, bytesOut, backend);
                ev.note(note);
            }
            @Override public void tensor(int i, int total, String name, long bi, long bo, double s) { ev.tensor(i, total, name, bi, bo, s); }
            @Override public void note(String message) { ev.note(message); }
            @Override public void done(String o, int t, long bi, long bo, double s, long pw, long pr) { ev.done(o, t, bi, bo, s, pw, pr); }
            @Override public void error(String message, int exitCode) { ev.error(message, exitCode); }
        };
    }

    private static void printPlan(PrintWriter out, Planner.Plan plan, long maxShard, MemoryBudget.Estimate mem) {
        ShardPlan shards = Merger.shards(plan, maxShard);
        MergeConfig cfg = plan.config();
        out.printf(Locale.ROOT, "plan: %s%n", cfg.method().name());
        if (cfg.baseModel() != null) out.printf("  base model: %s%n", cfg.baseModel());
        cfg.models().forEach(m -> out.printf("  model: %s%n", m.model()));
        cfg.slices().forEach(s -> s.sources().forEach(src -> out.printf("  slice source: %s layers [%d, %d)%n", src.model(), src.layerStart(), src.layerEnd())));
        out.printf(Locale.ROOT, "  tensors: %d (%d layers out)%n", plan.tensors().size(), plan.outLayers());
        out.printf(Locale.ROOT, "  bytes to read: %d (%.3f GB)%n", plan.inBytes(), plan.inBytes() / 1e9);
        out.printf(Locale.ROOT, "  bytes to write: %d (%.3f GB) in %d shard(s): %s%n", shards.totalFileBytes(), shards.totalFileBytes() / 1e9,
                shards.shards().size(), String.join(", ", shards.fileNames()));
        long work = Merger.workingBytesEstimate(plan);
        out.printf(Locale.ROOT, "  peak working memory estimate: %d bytes (%.3f GB): (%d inputs + 3) x largest tensor of %d float32 elements%n",
                work, work / 1e9, plan.maxInputs(), plan.largestElements());
        out.printf(Locale.ROOT, "  %s%n", mem.describe());
        if (cfg.aim() != null) out.printf(Locale.ROOT, "  aim: omega %.3f%n", cfg.aim().omega());
        out.println("dry run: nothing written");
        out.flush();
    }
}
