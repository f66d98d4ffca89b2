package dev.mergeforge.cli;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.calib.Calibrator;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.eval.Evaluator;
import dev.mergeforge.eval.PromptAnswer;
import dev.mergeforge.eval.TaskScore;
import dev.mergeforge.eval.TextLoss;
import dev.mergeforge.io.OutputDir;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.run.AimSupport;
import dev.mergeforge.run.Calibration;
import dev.mergeforge.run.Events;
import dev.mergeforge.run.Merger;
import dev.mergeforge.run.Planner;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * `mergeforge aim-sweep`: what AIM does to real merges. Calibrates the base once, merges the
 * models with each method, plain and with AIM at each omega, and evaluates every result on a text
 * file (mean token NLL) and on {prompt, answer} tasks (answer NLL and exact match), printing a
 * markdown table. Everything runs in this process with the same engine as `merge`.
 */
@Command(mixinStandardHelpOptions = true, name = "aim-sweep", description = "Merge with several methods, plain and with AIM at several omegas, and evaluate every result (markdown table).")
final class AimSweepCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--base", required = true, description = "Base model directory.")
    Path base;

    @Option(names = "--models", required = true, split = ",", description = "Fine-tuned model directories, comma separated.")
    List<Path> models;

    @Option(names = "--methods", split = ",", defaultValue = "task_arithmetic,ties,dare_ties", description = "Methods (default task_arithmetic,ties,dare_ties).")
    List<String> methods;

    @Option(names = "--omegas", split = ",", defaultValue = "0.2,0.4,0.6", description = "AIM omegas (default 0.2,0.4,0.6).")
    List<Double> omegas;

    @Option(names = "--weight", defaultValue = "1.0", description = "weight of every model (default 1).")
    double weight;

    @Option(names = "--density", defaultValue = "1.0", description = "density for ties (default 1: trimming off, as the zoo's reference TIES).")
    double density;

    @Option(names = "--dare-density", defaultValue = "0.5", description = "density for the dare methods (default 0.5).")
    double dareDensity;

    @Option(names = "--stats", description = "AIM statistic of the base (default: calibrate on --calib).")
    Path stats;

    @Option(names = "--calib", description = "Calibration data for the statistic (text, JSONL text or input_ids).")
    Path calib;

    @Option(names = "--text", required = true, description = "Text for the general loss (one document a line).")
    Path text;

    @Option(names = "--tasks", arity = "0..*", description = "{prompt, answer} JSONL task files.")
    List<Path> tasks = new ArrayList<>();

    @Option(names = "--rows", defaultValue = "100", description = "Task rows evaluated (default 100).")
    int rows;

    @Option(names = "--max-tokens", defaultValue = "128", description = "Tokens per text document (default 128).")
    int maxTokens;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random methods.")
    long seed;

    @Option(names = "--work", defaultValue = "target/aim-sweep", description = "Work folder (default target/aim-sweep).")
    Path work;

    @Mixin BackendOptions backendOptions;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (stats == null && calib == null) throw new ConfigException("aim-sweep: give --stats FILE or --calib FILE for the AIM statistic");
        Files.createDirectories(work);
        Path statsFile = stats;
        if (statsFile == null) {
            statsFile = work.resolve("act_mean.safetensors");
            err.println("calibrating " + base + " on " + calib);
            Calibrator.calibrate(base, calib, Calibrator.Settings.defaults().withCacheDir(Calibration.cacheDir()), statsFile);
        }
        List<String> header = new ArrayList<>(List.of("merge", "general loss"));
        for (Path t : tasks) {
            String n = t.getFileName().toString().replace("_eval.jsonl", "").replace(".jsonl", "");
            header.add(n + " answer NLL");
            header.add(n + " exact");
        }
        StringBuilder table = new StringBuilder("| " + String.join(" | ", header) + " |\n|" + "---|".repeat(header.size()) + "\n");
        try (Backend be = backendOptions.create()) {
            for (String method : methods) {
                List<Double> variants = new ArrayList<>();
                variants.add(null);
                variants.addAll(omegas);
                for (Double omega : variants) {
                    String name = method + (omega == null ? "" : "+aim(omega=" + omega + ")");
                    err.println("merging " + name);
                    Path dir = work.resolve(name.replaceAll("[^A-Za-z0-9_.=-]", "_"));
                    merge(be, yaml(method, omega, statsFile), dir);
                    table.append(row(name, dir)).append('\n');
                    OutputDir.deleteTree(dir);
                }
            }
        }
        out.print(table);
        out.flush();
        return 0;
    }

    private String yaml(String method, Double omega, Path statsFile) {
        StringBuilder y = new StringBuilder("merge_method: " + method + "\nbase_model: " + base.toAbsolutePath() + "\nmodels:\n");
        String params = "weight: " + weight + (method.equals("ties") ? ", density: " + density
                : method.startsWith("dare") ? ", density: " + dareDensity : "");
        for (Path m : models) y.append("  - model: ").append(m.toAbsolutePath()).append("\n    parameters: {").append(params).append("}\n");
        y.append("dtype: float32\n");
        if (omega != null) y.append("aim:\n  omega: ").append(omega).append("\n  stats: ").append(statsFile.toAbsolutePath()).append('\n');
        return y.toString();
    }

    private void merge(Backend be, String yaml, Path out) {
        MergeConfig cfg = ConfigReader.parse(yaml, "aim-sweep");
        try (Planner.Inputs inputs = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(cfg, inputs);
            try (AimRelaxer aim = AimSupport.relaxer(cfg, plan, inputs, be, Events.NONE)) {
                Merger.run(plan, inputs, out, new Merger.Options(be, seed, 5_000_000_000L, true, false, aim, Events.NONE));
            }
        }
    }

    private String row(String name, Path model) {
        Parallel par = new Parallel(backendOptions.threads);
        try (LlamaModel m = LlamaModel.open(model, par, true); TextTokenizer tok = TextTokenizer.open(model)) {
            TextLoss l = Evaluator.textLoss(m, tok, Evaluator.readDocuments(text), maxTokens);
            StringBuilder r = new StringBuilder(String.format(Locale.ROOT, "| %s | %.4f |", name, l.meanNll()));
            for (Path t : tasks) {
                TaskScore s = Evaluator.taskScore(m, tok, PromptAnswer.readJsonl(t), rows, rows);
                r.append(String.format(Locale.ROOT, " %.4f | %.2f |", s.answerNll(), s.accuracy()));
            }
            return r.toString();
        } finally {
            par.shutdown();
        }
    }
}
