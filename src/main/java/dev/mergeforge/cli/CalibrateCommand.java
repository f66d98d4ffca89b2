package dev.mergeforge.cli;

import dev.mergeforge.calib.Calibrator;
import dev.mergeforge.calib.GramCalibrator;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** `mergeforge calibrate MODEL --stat act_mean ... -o STATS.safetensors`. */
@Command(mixinStandardHelpOptions = true, name = "calibrate", description = "Run a model over calibration data and record a statistic per weight (act_mean for AIM, gram for regmean).")
final class CalibrateCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "MODEL", description = "Model directory or HF cache id (Llama, Mistral, Qwen2 families).")
    String model;

    @Option(names = "--stat", defaultValue = "act_mean", description = "Statistic (default: ${DEFAULT-VALUE}): act_mean (mean |input| per input channel, for AIM) or gram (X^T X / tokens per Linear input, for regmean).")
    String stat;

    @Option(names = "--data", description = "Text (one document a line), JSONL with \"text\", or JSONL with \"input_ids\". Default: samples from the model itself.")
    Path data;

    @Option(names = "--samples", defaultValue = "128", description = "Number of calibration blocks (default 128).")
    int samples;

    @Option(names = "--seq-len", defaultValue = "0", description = "Tokens per block (default: 512, or the length of pre-tokenized blocks).")
    int seqLen;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for self-generated samples.")
    long seed;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the forward pass runs: cpu (default), or GPU N with the products on cuBLAS (cuda = cuda:0).")
    String device;

    @Option(names = "--threads", defaultValue = "0", description = "Worker threads (0 = one per core).")
    int threads;

    @Option(names = "--no-cache", description = "Do not read or write the calibration cache.")
    boolean noCache;

    @Option(names = {"-o", "--output"}, required = true, description = "Stats file to write (safetensors).")
    Path output;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    @Override
    public Integer call() {
        if (!stat.equals("act_mean") && !stat.equals("gram")) {
            throw new ConfigException("--stat " + stat + ": unknown statistic; valid: act_mean, gram");
        }
        if (data != null && !Files.isRegularFile(data)) {
            throw new ConfigException("--data " + data + ": file not found; give a text file, JSONL with \"text\" or with \"input_ids\"");
        }
        Calibrator.Settings s = new Calibrator.Settings(samples, seqLen, seed, threads, noCache ? null : Calibration.cacheDir(), device);
        Path dir;
        try (Checkpoint c = Checkpoint.open(model)) {
            dir = c.dir();
        }
        long t0 = System.nanoTime();
        if (stat.equals("gram")) GramCalibrator.calibrate(dir, data, s, output);
        else Calibrator.calibrate(dir, data, s, output);
        spec.commandLine().getErr().printf("wrote %s (%.1f s)%n", output, (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
