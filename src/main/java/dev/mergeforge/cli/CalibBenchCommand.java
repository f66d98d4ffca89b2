package dev.mergeforge.cli;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.bench.Family;
import dev.mergeforge.calib.Calibrator;
import dev.mergeforge.calib.TokenBlocks;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.model.ActivationObserver;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.run.ProcessStats;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * `mergeforge calib-bench`: calibration throughput against a plain forward pass of the same model
 * on the same blocks in the same run, and the memory of layer-by-layer calibration against the
 * model's size (run it with a heap smaller than the model: MERGEFORGE_JAVA_OPTS=-Xmx512m).
 */
@Command(mixinStandardHelpOptions = true, name = "calib-bench", description = "Calibration tokens/s vs a plain forward pass in the same run, and memory vs model size.")
final class CalibBenchCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "Model (default: a generated random Llama of --params).")
    String model;

    @Option(names = "--params", defaultValue = "100000000", description = "Parameters of the generated model (default 100M).")
    long params;

    @Option(names = "--samples", defaultValue = "8", description = "Blocks (default 8).")
    int samples;

    @Option(names = "--seq-len", defaultValue = "128", description = "Tokens per block (default 128).")
    int seqLen;

    @Option(names = "--repeats", defaultValue = "2", description = "Timed rounds of each (best taken; default 2).")
    int repeats;

    @Option(names = "--threads", defaultValue = "0", description = "Worker threads (0 = one per core).")
    int threads;

    @Option(names = "--dir", defaultValue = "target/calib-bench", description = "Where a generated model goes.")
    Path dir;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Parallel par = new Parallel(threads);
        try {
            Path modelDir;
            long bytes;
            if (model == null) {
                RandomModels.Builder b = Family.shapeFor(params, par);
                modelDir = Family.ensure(b, 1, dir.resolve("models-" + params), err).base();
            } else {
                try (Checkpoint c = Checkpoint.open(model)) {
                    modelDir = c.dir();
                }
            }
            try (Checkpoint c = Checkpoint.open(modelDir.toString())) {
                bytes = c.totalBytes();
            }
            double fwd = 0, cal = 0;
            long tokens;
            try (LlamaModel m = LlamaModel.open(modelDir, par, false)) {
                SplittableRandom r = new SplittableRandom(7);
                int[][] blocks = new int[samples][seqLen];
                for (int[] row : blocks) for (int t = 0; t < seqLen; t++) row[t] = r.nextInt(m.config().vocabSize());
                TokenBlocks tb = new TokenBlocks(blocks, seqLen, "random ids (seed 7)");
                tokens = tb.tokens();
                for (int k = 0; k < repeats; k++) {
                    long t0 = System.nanoTime();
                    m.hiddenStates(blocks, ActivationObserver.NONE);
                    fwd = Math.max(fwd, tokens / ((System.nanoTime() - t0) / 1e9));
                    t0 = System.nanoTime();
                    Calibrator.compute(m, tb);
                    cal = Math.max(cal, tokens / ((System.nanoTime() - t0) / 1e9));
                }
            }
            Runtime rt = Runtime.getRuntime();
            out.printf(Locale.ROOT, "model %s: %.1f MB of weights%n", modelDir, bytes / 1e6);
            out.printf(Locale.ROOT, "%d blocks x %d tokens, %d threads, best of %d%n", samples, seqLen, par.threads(), repeats);
            out.printf(Locale.ROOT, "| pass | tokens/s |%n|---|---:|%n| forward | %.0f |%n| calibration (act_mean) | %.0f |%n", fwd, cal);
            out.printf(Locale.ROOT, "calibration overhead: %.1f%%%n", 100 * (fwd / cal - 1));
            out.printf(Locale.ROOT, "max heap %.0f MB, peak RSS %.0f MB (mapped weight pages included)%n", rt.maxMemory() / 1e6,
                    ProcessStats.peakRssBytes() / 1e6);
            out.flush();
            return 0;
        } finally {
            par.shutdown();
        }
    }
}
