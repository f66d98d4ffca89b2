package dev.mergeforge.cli;

import dev.mergeforge.api.CancellationToken;
import dev.mergeforge.api.Event;
import dev.mergeforge.api.EventListener;
import dev.mergeforge.api.MergeRequest;
import dev.mergeforge.api.Mergeforge;
import dev.mergeforge.api.PlanResult;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.run.Events;
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

    @Option(names = "--device-memory", paramLabel = "SIZE",
            description = "GPU memory the cuda backend's chunked methods may use (e.g. 20GB); chunks stay on the GPU between passes while they fit. Default: 3/4 of the GPU's free memory.")
    String deviceMemory;

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
        MergeRequest req;
        try {
            req = new MergeRequest(config, null, output, seed, Sizes.parse("--out-shard-size", shardSize), outputOptions.overwrite,
                    allowNonFinite, allowCrimes, backendOptions.choice().withDeviceMemory(deviceMemory == null ? 0 : Sizes.parse("--device-memory", deviceMemory)),
                    maxMemory == null ? 0 : Sizes.parse("--max-memory", maxMemory));
        } catch (MergeforgeException e) {
            ev.error(e.getMessage(), e.exitCode());
            throw e;
        }
        EventListener events = EventListener.of(ev);
        // warnings go to stderr whatever the event format, as the rest of the command line's warnings
        EventListener forward = e -> {
            if (e instanceof Event.Warning w) {
                err.println("warning: " + w.message());
                err.flush();
            } else if (e instanceof Event.Budget && !outputOptions.chatty()) {
                // the budget line is for a person reading the log (JSON consumers have the plan's fields)
            } else {
                events.on(e);
            }
        };
        if (dryRun) {
            try {
                printPlan(out, Mergeforge.plan(req, forward));
            } catch (MergeforgeException e) {
                ev.error(e.getMessage(), e.exitCode());
                throw e;
            }
            return 0;
        }
        // the merge itself reports its failure as an event (and throws)
        Mergeforge.merge(req, e -> {
            if (e instanceof Event.Started s && outputOptions.chatty()) err.println("backend: " + s.backend());
            forward.on(e);
        }, new CancellationToken());
        return 0;
    }

    private static void printPlan(PrintWriter out, PlanResult plan) {
        out.printf(Locale.ROOT, "plan: %s%n", plan.method());
        if (plan.baseModel() != null) out.printf("  base model: %s%n", plan.baseModel());
        plan.models().forEach(m -> out.printf("  model: %s%n", m));
        plan.sliceSources().forEach(src -> out.printf("  slice source: %s layers [%d, %d)%n", src.model(), src.layerStart(), src.layerEnd()));
        out.printf(Locale.ROOT, "  tensors: %d (%d layers out)%n", plan.tensors(), plan.outLayers());
        out.printf(Locale.ROOT, "  bytes to read: %d (%.3f GB)%n", plan.bytesIn(), plan.bytesIn() / 1e9);
        out.printf(Locale.ROOT, "  bytes to write: %d (%.3f GB) in %d shard(s): %s%n", plan.bytesOut(), plan.bytesOut() / 1e9,
                plan.shardFiles().size(), String.join(", ", plan.shardFiles()));
        // the budget's line carries this merge's predicted peak; the whole-tensor bound is what merging without chunks would take
        out.printf(Locale.ROOT, "  peak working memory: %s%n", plan.memoryBudget());
        long work = plan.peakWorkingBytes();
        out.printf(Locale.ROOT, "  without chunks it would be %d bytes (%.3f GB): (%d inputs + 3) x largest tensor of %d float32 elements%n",
                work, work / 1e9, plan.maxInputs(), plan.largestElements());
        if (plan.aimOmega() != null) out.printf(Locale.ROOT, "  aim: omega %.3f%n", plan.aimOmega());
        out.println("dry run: nothing written");
        out.flush();
    }
}
