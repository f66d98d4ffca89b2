package dev.mergeforge.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.api.BackendChoice;
import dev.mergeforge.api.CancellationToken;
import dev.mergeforge.api.CandidateMode;
import dev.mergeforge.api.EvalRequest;
import dev.mergeforge.api.EvalResult;
import dev.mergeforge.api.EventListener;
import dev.mergeforge.api.MergeEvalRequest;
import dev.mergeforge.api.MergeEvalResult;
import dev.mergeforge.api.MergeRequest;
import dev.mergeforge.api.Mergeforge;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.ProcessStats;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A search loop's cost: a 10-candidate task-arithmetic weight sweep over the demo's ~100M Llama
 * family, each candidate merged and scored on the same text, four ways: (A) a `mergeforge merge`
 * and a `mergeforge eval` process per candidate with the checkpoint on disk; (B) one warm JVM calling
 * {@link Mergeforge#merge} to disk then {@link Mergeforge#eval}; (C) one warm JVM calling
 * {@link Mergeforge#mergeAndEval} in mode memory (the candidate's tensors in memory, no file); (D) the
 * same in mode layers (each layer merged as the forward pass reaches it, then dropped). B, C and D each
 * score one untimed candidate first and then take turns candidate by candidate; A runs last. Checks
 * that the four give the same scores and prints a markdown table. "merges" is everything but the eval
 * (planning and writing included; in mode layers the forward pass runs inside the merge and counts as eval).
 *
 * <pre>java -Xmx3g --enable-native-access=ALL-UNNAMED -cp target/mergeforge.jar dev.mergeforge.bench.SweepBench [DIR] [LAUNCHER] [memory|layers]</pre>
 * With a mode as the third argument only that way runs (C or D), and the line printed gives this JVM's peak RSS.
 */
public final class SweepBench {
    private static final int CANDIDATES = 10, MAX_TOKENS = 64;

    private SweepBench() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "target/demo");
        String launcher = args.length > 1 ? args[1] : "bin/mergeforge";
        PrintWriter log = new PrintWriter(System.err, true, StandardCharsets.UTF_8);
        Parallel par = new Parallel(0);
        RandomModels.Family f = Family.ensure(Family.shapeFor(100_000_000L, par), 3, dir.resolve("models"), log);
        par.shutdown();
        Path work = dir.resolve("sweep");
        Files.createDirectories(work);
        Path text = work.resolve("eval.txt");
        Files.writeString(text, String.join("\n", "the merged model reads this line", "a second document of plain words",
                "numbers like 12 and 345 appear too", "and a fourth short document") + "\n");
        List<String> configs = new ArrayList<>();
        for (int i = 0; i < CANDIDATES; i++) {
            double w = i / (double) (CANDIDATES - 1);
            configs.add(String.format(Locale.ROOT, "merge_method: task_arithmetic\nbase_model: %s\nmodels:\n  - model: %s\n    parameters: {weight: %.4f}\n"
                    + "  - model: %s\n    parameters: {weight: %.4f}\ndtype: bfloat16\n", f.base(), f.fineTunes().get(0), w, f.fineTunes().get(1), 1 - w));
        }
        List<Path> inputs = List.of(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));

        Family.warm(inputs);
        if (args.length > 2) {
            only(CandidateMode.valueOf(args[2].toUpperCase(Locale.ROOT)), configs, text);
            return;
        }
        // one untimed candidate each way first: class loading, JIT and the native kernels' start-up
        candidateInMemory(configs.getFirst(), text, CandidateMode.MEMORY);
        candidateInMemory(configs.getFirst(), text, CandidateMode.LAYERS);
        candidateOnDisk(configs.getFirst(), text, work.resolve("b-candidate"));
        // then B, C and D take turns candidate by candidate (each goes first on a third of them), so load drift on a shared machine hits all alike
        double[] b = new double[CANDIDATES], c = new double[CANDIDATES], d = new double[CANDIDATES];
        double[] bTimes = new double[3], cTimes = new double[3], dTimes = new double[3];
        long[] held = new long[2];
        for (int i = 0; i < CANDIDATES; i++) {
            for (int k = 0; k < 3; k++) {
                switch ((i + k) % 3) {
                    case 0 -> b[i] = candidateOnDisk(configs.get(i), text, work.resolve("b-candidate"), bTimes);
                    case 1 -> c[i] = candidateInMemory(configs.get(i), text, CandidateMode.MEMORY, held, cTimes);
                    default -> d[i] = candidateInMemory(configs.get(i), text, CandidateMode.LAYERS, held, dTimes);
                }
            }
        }
        double bTotal = bTimes[0], bMerge = bTimes[1], bEval = bTimes[2];
        double cTotal = cTimes[0], cMerge = cTimes[1], cEval = cTimes[2];
        double dTotal = dTimes[0], dMerge = dTimes[1], dEval = dTimes[2];
        long cRss = ProcessStats.peakRssBytes();

        Family.warm(inputs);
        long t0 = System.nanoTime();
        double[] a = new double[CANDIDATES];
        double aMerge = 0, aEval = 0;
        for (int i = 0; i < CANDIDATES; i++) {
            Path cfg = work.resolve("a-candidate.yml"), out = work.resolve("a-candidate");
            Files.writeString(cfg, configs.get(i));
            long m0 = System.nanoTime();
            run(launcher, "merge", cfg.toString(), out.toString(), "--overwrite", "-q");
            long e0 = System.nanoTime();
            String json = run(launcher, "eval", out.toString(), "--text", text.toString(), "--max-tokens", String.valueOf(MAX_TOKENS), "--json");
            aEval += (System.nanoTime() - e0) / 1e9;
            aMerge += (e0 - m0) / 1e9;
            a[i] = new ObjectMapper().readTree(json).at("/text/mean_nll").asDouble();
        }
        double aTotal = (System.nanoTime() - t0) / 1e9;

        double diff = 0;
        for (int i = 0; i < CANDIDATES; i++) diff = Math.max(diff, Math.max(Math.max(Math.abs(a[i] - c[i]), Math.abs(b[i] - c[i])), Math.abs(d[i] - c[i])));
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        out.printf(Locale.ROOT, "## %d-candidate task_arithmetic weight sweep, %.0fM-parameter bf16 Llama, %d documents x %d tokens%n%n",
                CANDIDATES, Family.shapeFor(100_000_000L, new Parallel(1)).parameters() / 1e6, 4, MAX_TOKENS);
        out.println("| way | total s | merges s | evals s | s per candidate |");
        out.println("|---|---|---|---|---|");
        out.printf(Locale.ROOT, "| A: `merge` + `eval` processes, checkpoint on disk | %.1f | %.1f | %.1f | %.2f |%n", aTotal, aMerge, aEval, aTotal / CANDIDATES);
        out.printf(Locale.ROOT, "| B: warm JVM, Mergeforge.merge to disk + eval | %.1f | %.1f | %.1f | %.2f |%n", bTotal, bMerge, bEval, bTotal / CANDIDATES);
        out.printf(Locale.ROOT, "| C: warm JVM, Mergeforge.mergeAndEval, mode memory | %.1f | %.1f | %.1f | %.2f |%n", cTotal, cMerge, cEval, cTotal / CANDIDATES);
        out.printf(Locale.ROOT, "| D: warm JVM, Mergeforge.mergeAndEval, mode layers | %.1f | %.1f | %.1f | %.2f |%n", dTotal, dMerge, dEval, dTotal / CANDIDATES);
        out.printf(Locale.ROOT, "%nlargest score difference between the ways: %.3g (mean token NLL); peak RSS of the warm JVM after B, C, D: %.0f MB;"
                + " merged bytes held at once: C %.0f MB, D %.0f MB%n", diff, cRss / 1e6, held[0] / 1e6, held[1] / 1e6);
        if (diff != 0) throw new IllegalStateException("the four ways disagree on the scores by " + diff);
    }

    private static double candidateInMemory(String config, Path text, CandidateMode mode) { return candidateInMemory(config, text, mode, new long[2]); }

    /**
     * Scores one candidate through {@link Mergeforge#mergeAndEval} in {@code mode}; adds total, merge and eval seconds to {@code times}
     * and keeps the most merged bytes held at once in {@code held} (memory: [0], layers: [1]).
     */
    private static double candidateInMemory(String config, Path text, CandidateMode mode, long[] held, double... times) {
        long t0 = System.nanoTime();
        MergeEvalRequest req = new MergeEvalRequest(null, config, 0, BackendChoice.AUTO, text, List.of(), MAX_TOKENS, 100).withMode(mode);
        MergeEvalResult r = Mergeforge.mergeAndEval(req, EventListener.NONE, new CancellationToken());
        if (r.mode() != mode) throw new IllegalStateException("asked for mode " + mode + ", ran " + r.mode());
        int slot = mode == CandidateMode.LAYERS ? 1 : 0;
        held[slot] = Math.max(held[slot], r.peakHeldBytes());
        if (times.length == 3) {
            double total = (System.nanoTime() - t0) / 1e9;
            times[0] += total;
            times[1] += total - r.evalSeconds(); // planning and merging into memory, as B's merge column (layers: the pass inside counts as eval)
            times[2] += r.evalSeconds();
        }
        return r.eval().text().meanNll();
    }

    /**
     * The sweep in one mode only, for its memory: this JVM's peak RSS (run each mode in its own JVM
     * with the same heap limit), the time and the merged bytes held at once.
     */
    private static void only(CandidateMode mode, List<String> configs, Path text) {
        candidateInMemory(configs.getFirst(), text, mode);
        double[] times = new double[3];
        long[] held = new long[2];
        for (String c : configs) candidateInMemory(c, text, mode, held, times);
        System.out.printf(Locale.ROOT, "mode %s only: %d candidates in %.1f s (merges %.1f s, evals %.1f s); merged bytes held at once %.0f MB;"
                + " peak RSS %.0f MB%n", mode.name().toLowerCase(Locale.ROOT), configs.size(), times[0], times[1], times[2],
                Math.max(held[0], held[1]) / 1e6, ProcessStats.peakRssBytes() / 1e6);
    }

    /** Scores one candidate by a merge to {@code out} on disk and an eval of it; adds total, merge and eval seconds to {@code times}. */
    private static double candidateOnDisk(String config, Path text, Path out, double... times) {
        long m0 = System.nanoTime();
        Mergeforge.merge(MergeRequest.ofYaml(config, out).withOverwrite(true), EventListener.NONE, new CancellationToken());
        long e0 = System.nanoTime();
        EvalResult r = Mergeforge.eval(new EvalRequest(out.toString(), text, List.of(), MAX_TOKENS, 100, "cpu", 0), EventListener.NONE,
                new CancellationToken());
        long e1 = System.nanoTime();
        if (times.length == 3) {
            times[0] += (e1 - m0) / 1e9;
            times[1] += (e0 - m0) / 1e9;
            times[2] += (e1 - e0) / 1e9;
        }
        return r.text().meanNll();
    }

    private static String run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) throw new IllegalStateException(String.join(" ", cmd) + " failed with exit code " + p.exitValue());
        return out;
    }
}
