package dev.mergeforge.cli;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.run.AimSupport;
import dev.mergeforge.run.Events;
import dev.mergeforge.run.Merger;
import dev.mergeforge.run.Planner;
import org.yaml.snakeyaml.Yaml;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * `mergeforge aim`: AIM on an already merged checkpoint. Runs as a linear "merge" of MERGED
 * (weight 1) and BASE (weight 0) — an exact copy of MERGED — with BASE as base model and the aim:
 * relaxation on top, so it
 * shares the streaming loop, the checks and the atomic output of every merge.
 */
@Command(mixinStandardHelpOptions = true, name = "aim", description = "Apply activation-informed merging (AIM) to an already merged checkpoint.")
final class AimCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--merged", required = true, description = "The merged model (directory or HF cache id).")
    String merged;

    @Option(names = "--base", required = true, description = "The base model the merge started from.")
    String base;

    @Option(names = "--omega", defaultValue = "0.4", description = "Share of the delta kept on the most important channel, in [0, 1] (default 0.4).")
    double omega;

    @Option(names = "--stats", description = "AIM statistic of the base model (safetensors, see README).")
    Path stats;

    @Option(names = "--data", description = "Calibration data to compute the statistic from (text, JSONL text or input_ids).")
    Path data;

    @Option(names = "--scaling", defaultValue = "identity", description = "identity | power")
    String scaling;

    @Option(names = "--power", defaultValue = "1", description = "Exponent p for --scaling power.")
    double power;

    @Option(names = {"-o", "--output"}, required = true, description = "Output directory.")
    Path output;

    @Mixin OutputOptions outputOptions;

    @Mixin BackendOptions backendOptions;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Events ev = outputOptions.events(out, err);
        try {
            if ((stats == null) == (data == null)) throw new ConfigException("mergeforge aim: give exactly one of --stats FILE or --data FILE");
            MergeConfig cfg = ConfigReader.parse(new Yaml().dump(config()), "mergeforge aim");
            try (Planner.Inputs inputs = new Planner.Inputs()) {
                Planner.Plan plan = Planner.plan(cfg, inputs);
                try (Backend backend = backendOptions.create();
                     AimRelaxer aim = AimSupport.relaxer(cfg, plan, inputs, backend, ev)) {
                    Merger.run(plan, inputs, output, new Merger.Options(backend, 0, 5_000_000_000L, outputOptions.overwrite, false, aim, ev));
                }
            }
            return 0;
        } catch (MergeforgeException e) {
            ev.error(e.getMessage(), e.exitCode());
            throw e;
        }
    }

    private Map<String, Object> config() {
        Map<String, Object> aim = new LinkedHashMap<>();
        aim.put("omega", omega);
        if (stats != null) aim.put("stats", stats.toString());
        else aim.put("calibration", Map.of("data", data.toString()));
        aim.put("scaling", scaling);
        if (scaling.equals("power")) aim.put("power", power);
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("merge_method", "linear");
        c.put("base_model", base);
        // the base is listed with weight 0 so that the copy of MERGED is exact: (1·m + 0·b) / 1 = m
        c.put("models", List.of(Map.of("model", merged, "parameters", Map.of("weight", 1.0)),
                Map.of("model", base, "parameters", Map.of("weight", 0.0))));
        c.put("aim", aim);
        return c;
    }
}
