package dev.mergeforge.cli;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.ffm.NativeMatMul;
import dev.mergeforge.bench.Family;
import dev.mergeforge.calib.Calibrator;
import dev.mergeforge.calib.TokenBlocks;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.model.ActivationObserver;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.ProductMeter;
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

    @Option(names = "--repeats", defaultValue = "2", description = "Timed rounds of each (tokens/s: the best; products: median and best; default 2).")
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
        String refused = refusedOption();
        if (refused != null) {
            err.println("error: " + refused);
            return 2;
        }
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
            double fwd = 0, cal = 0, fwdCpu = 0, calCpu = 0;
            Peak peak = new Peak(par.threads());
            // every repeat's product counts: the table gives their median beside the best
            java.util.List<ProductMeter.Reading> fwdProducts = new java.util.ArrayList<>(), calProducts = new java.util.ArrayList<>();
            String loadBefore = loadAverage();
            long tokens;
            try (LlamaModel m = LlamaModel.open(modelDir, par, false)) {
                SplittableRandom r = new SplittableRandom(7);
                int[][] blocks = new int[samples][seqLen];
                for (int[] row : blocks) for (int t = 0; t < seqLen; t++) row[t] = r.nextInt(m.config().vocabSize());
                TokenBlocks tb = new TokenBlocks(blocks, seqLen, "random ids (seed 7)");
                tokens = tb.tokens();
                for (int k = 0; k < repeats; k++) {
                    // the peak is timed between the passes, so each pass has a peak taken under the same load
                    peak.measure();
                    ProductMeter.start();
                    long t0 = System.nanoTime(), c0 = ProductMeter.processCpuNanos();
                    m.hiddenStates(blocks, ActivationObserver.NONE);
                    fwd = Math.max(fwd, tokens / ((System.nanoTime() - t0) / 1e9));
                    fwdCpu = Math.max(fwdCpu, tokens / ((ProductMeter.processCpuNanos() - c0) / 1e9));
                    fwdProducts.add(ProductMeter.stop());
                    peak.measure();
                    ProductMeter.start();
                    t0 = System.nanoTime();
                    c0 = ProductMeter.processCpuNanos();
                    Calibrator.compute(m, tb);
                    cal = Math.max(cal, tokens / ((System.nanoTime() - t0) / 1e9));
                    calCpu = Math.max(calCpu, tokens / ((ProductMeter.processCpuNanos() - c0) / 1e9));
                    calProducts.add(ProductMeter.stop());
                }
                peak.measure();
            }
            Runtime rt = Runtime.getRuntime();
            out.printf(Locale.ROOT, "model %s: %.1f MB of weights%n", modelDir, bytes / 1e6);
            out.printf(Locale.ROOT, "%d blocks x %d tokens, %d threads, best of %d%n", samples, seqLen, par.threads(), repeats);
            out.printf(Locale.ROOT, "| pass | tokens/s | tokens per CPU-second |%n|---|---:|---:|%n| forward | %.0f | %.0f |%n"
                    + "| calibration (act_mean) | %.0f | %.0f |%n", fwd, fwdCpu, cal, calCpu);
            out.printf(Locale.ROOT, "calibration overhead: %.1f%%%n", 100 * (fwd / cal - 1));
            out.printf(Locale.ROOT, "load average before %s, after %s (%d CPUs)%n", loadBefore, loadAverage(),
                    Runtime.getRuntime().availableProcessors());
            printProducts(out, peak, fwdProducts, calProducts);
            out.printf(Locale.ROOT, "max heap %.0f MB, peak RSS %.0f MB (mapped weight pages included)%n", rt.maxMemory() / 1e6,
                    ProcessStats.peakRssBytes() / 1e6);
            out.flush();
            return 0;
        } finally {
            par.shutdown();
        }
    }

    /** The machine's FMA peak on the bench's threads, timed by wall clock and by process CPU time; best of the measurements. */
    static final class Peak {
        private final int threads;
        double wall, cpu;        // GFLOP per wall second, per CPU second: the best run
        final java.util.List<Double> walls = new java.util.ArrayList<>(), cpus = new java.util.ArrayList<>();
        int runs;

        Peak(int threads) { this.threads = threads; }

        void measure() {
            if (!NativeMatMul.available()) return;
            long iters = 1 << 20;
            while (true) {
                long c0 = ProductMeter.processCpuNanos(), t0 = System.nanoTime();
                long flops = NativeMatMul.fmaPeak(iters, threads);
                long ns = System.nanoTime() - t0, cns = ProductMeter.processCpuNanos() - c0;
                // the JVM's process CPU clock ticks in 10 ms steps: half a CPU-second keeps that under 2%
                if ((ns >= 200_000_000L && (c0 < 0 || cns >= 500_000_000L)) || iters >= 1L << 40) {
                    walls.add(flops / (double) ns);
                    wall = Math.max(wall, flops / (double) ns);
                    if (c0 >= 0 && cns > 0) {
                        cpus.add(flops / (double) cns);
                        cpu = Math.max(cpu, flops / (double) cns);
                    }
                    runs++;
                    return;
                }
                iters *= 2;
            }
        }
    }

    /**
     * The products' rates against the FMA loop's, each measured on the bench's threads by wall clock
     * and by process CPU time: the median over the repeats against the loop's median (the figure
     * that holds from run to run), and the best repeat against the loop's best run.
     */
    private static void printProducts(PrintWriter out, Peak peak, java.util.List<ProductMeter.Reading> fwd,
                                      java.util.List<ProductMeter.Reading> cal) {
        if (peak.runs == 0) {
            out.println("products: the native library is not built, so no FMA peak is measured");
            return;
        }
        out.printf(Locale.ROOT, "FMA peak (native loop, %s, %d threads, %d runs): median %.1f GFLOP/s wall, %.1f GFLOP per CPU-second;"
                + " best %.1f and %.1f%n", NativeBackend.simd(), peak.threads, peak.runs, median(peak.walls), median(peak.cpus), peak.wall, peak.cpu);
        out.printf(Locale.ROOT, "products over %d repeats: median of the repeats against the loop's median, best repeat against the loop's best%n",
                fwd.size());
        out.printf(Locale.ROOT, "| products of | GFLOP | GFLOP/s wall (median) | of peak | GFLOP per CPU-s (median) | of peak"
                + " | GFLOP/s wall (best) | of peak | GFLOP per CPU-s (best) | of peak |%n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|%n");
        for (var e : new Object[][] {{"forward", fwd}, {"calibration", cal}}) {
            @SuppressWarnings("unchecked") java.util.List<ProductMeter.Reading> rs = (java.util.List<ProductMeter.Reading>) e[1];
            row(out, e[0] + ": all", rs.stream().map(ProductMeter.Reading::total).toList(), peak);
            row(out, e[0] + ": linear layers", rs.stream().map(ProductMeter.Reading::linear).toList(), peak);
            if (rs.get(0).attention().flops() > 0) {
                row(out, e[0] + ": attention (with its softmax)", rs.stream().map(ProductMeter.Reading::attention).toList(), peak);
            }
        }
    }

    private static void row(PrintWriter out, String what, java.util.List<ProductMeter.Part> ps, Peak peak) {
        java.util.List<Double> wall = ps.stream().map(ProductMeter.Part::gflopsPerSecond).toList();
        java.util.List<Double> cpu = ps.stream().map(ProductMeter.Part::gflopsPerCpuSecond).toList();
        double wm = median(wall), cm = median(cpu), pwm = median(peak.walls), pcm = median(peak.cpus);
        double wb = wall.stream().mapToDouble(Double::doubleValue).max().orElse(0), cb = cpu.stream().mapToDouble(Double::doubleValue).max().orElse(0);
        out.printf(Locale.ROOT, "| %s | %.1f | %.1f | %.0f%% | %.1f | %.0f%% | %.1f | %.0f%% | %.1f | %.0f%% |%n", what, ps.get(0).flops() / 1e9,
                wm, 100 * wm / pwm, cm, pcm > 0 ? 100 * cm / pcm : 0, wb, 100 * wb / peak.wall, cb, peak.cpu > 0 ? 100 * cb / peak.cpu : 0);
    }

    private static double median(java.util.List<Double> xs) {
        if (xs.isEmpty()) return 0;
        double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    /** /proc/loadavg's 1-minute figure, or "?" off Linux. */
    private static String loadAverage() {
        try {
            return java.nio.file.Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (java.io.IOException | RuntimeException e) {
            return "?";
        }
    }

    /** What is wrong with the first option below its minimum, or null when every count can run. */
    private String refusedOption() {
        if (repeats < 1) return atLeastOne("--repeats", repeats);
        if (samples < 1) return atLeastOne("--samples", samples);
        if (seqLen < 1) return atLeastOne("--seq-len", seqLen);
        if (threads < 0) return "--threads " + threads + ": must be 0 (one per core) or more; give --threads 0 or a count";
        return null;
    }

    private static String atLeastOne(String option, int value) {
        return option + " " + value + ": must be at least 1; give " + option + " 1 or more";
    }
}
