package dev.mergeforge.api;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.model.cuda.CudaForward;
import dev.mergeforge.calib.Calibrator;
import dev.mergeforge.calib.GramCalibrator;
import dev.mergeforge.config.ConfigKeys;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.eval.Evaluator;
import dev.mergeforge.eval.PromptAnswer;
import dev.mergeforge.eval.TaskScore;
import dev.mergeforge.eval.TextLoss;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.OutputDir;
import dev.mergeforge.io.ShardPlan;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.run.AimSupport;
import dev.mergeforge.run.MemoryBudget;
import dev.mergeforge.run.MemoryModel;
import dev.mergeforge.run.Calibration;
import dev.mergeforge.run.Events;
import dev.mergeforge.run.Merger;
import dev.mergeforge.run.Planner;
import dev.mergeforge.run.ProcessStats;
import dev.mergeforge.run.StatsLocator;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The Java entry points: what the command line, {@code mergeforge serve} and JVM callers share.
 * Every call reports to an {@link EventListener} on the calling thread, stops when its
 * {@link CancellationToken} asks (leaving nothing at its output), and fails with a
 * {@link MergeforgeError} carrying the one-line message and exit code the command line would print.
 * A failed merge also reports {@link Event.Failed}. Calls are independent and may run on several
 * threads at once. See docs/protocol.md for the same calls over the server.
 *
 * <pre>{@code
 * MergeResult r = Mergeforge.merge(MergeRequest.of(Path.of("ties.yml"), Path.of("out")),
 *         e -> System.out.println(e), new CancellationToken());
 * }</pre>
 */
public final class Mergeforge {
    private Mergeforge() {}

    /** Merges per the request's config into its output directory, written atomically. */
    public static MergeResult merge(MergeRequest req, EventListener listener, CancellationToken cancel) {
        return merging(req, "merge into " + req.output(), listener, cancel, (plan, inputs, o, mem) -> {
            Merger.Result r = Merger.run(plan, inputs, req.output(), o);
            return new MergeResult(r.output(), r.tensors(), r.bytesIn(), r.bytesOut(), r.seconds(), r.peakWorkingBytes(),
                    ProcessStats.peakRssBytes());
        });
    }

    /** What a merge does once its plan, inputs and options are ready. */
    private interface MergeStep<T> {
        T run(Planner.Plan plan, Planner.Inputs inputs, Merger.Options o, MemoryBudget.Estimate mem);
    }

    /**
     * Reads the request's config, plans it, opens its backend (and AIM) and runs {@code step} with the
     * options a merge of the request takes; a failure is reported as {@link Event.Failed} and thrown
     * as a {@link MergeforgeError}.
     */
    private static <T> T merging(MergeRequest req, String what, EventListener listener, CancellationToken cancel, MergeStep<T> step) {
        Events ev = new ListenerEvents(listener, cancel, what);
        try {
            cancel.check(what);
            MergeConfig cfg = read(req, listener);
            try (Planner.Inputs inputs = inputs(req, listener)) {
                Planner.Plan plan = Planner.plan(cfg, inputs, StatsLocator.calibrating(Calibration.cacheDir(), ev::note));
                cancel.check(what);
                try (Backend backend = req.backend().create();
                     AimRelaxer aim = AimSupport.relaxer(cfg, plan, inputs, backend, ev)) {
                    // chunk sizes follow from the memory budget; its line is the first note after start
                    MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, budget(req), req.maxMemoryBytes() > 0,
                            backend.chunkOps().isPresent(), !backend.name().equals("java"), aim != null, backend.name().equals("cuda"));
                    return step.run(plan, inputs, Merger.Options.budgeted(backend, req.seed(), req.maxShardBytes(),
                            req.overwrite(), req.allowNonFinite(), aim, budgetBeforeFirstTensor(ev, () -> listener.on(new Event.Budget(mem.describe(), mem.budget(), mem.chunkElements(), mem.peakBytes()))), mem), mem);
                }
            }
        } catch (RuntimeException e) {
            MergeforgeError err = MergeforgeError.of(e);
            listener.on(new Event.Failed(err.getMessage(), err.exitCode()));
            throw err;
        }
    }

    /**
     * The dry run: validates the config, the inputs and the output path and returns the plan with
     * byte counts and the peak working-memory estimate; writes nothing (except that an {@code aim:}
     * config whose statistic is not cached yet is calibrated, into the cache, as a merge would).
     */
    public static PlanResult plan(MergeRequest req, EventListener listener) {
        try {
            MergeConfig cfg = read(req, listener);
            try (Planner.Inputs inputs = inputs(req, listener)) {
                Planner.Plan plan = Planner.plan(cfg, inputs, StatsLocator.calibrating(Calibration.cacheDir(), m -> listener.on(new Event.Note(m))));
                OutputDir.check(req.output(), req.overwrite(), inputs.all().stream().map(c -> c.dir()).toList());
                // the backend is not opened for a plan: every backend streams chunks; its kind says whether it fuses linear merges
                String be = req.backend().backend();
                MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, budget(req), req.maxMemoryBytes() > 0,
                        true, !be.equals("java"), cfg.aim() != null, be.equals("cuda"));
                return summary(plan, req.maxShardBytes(), mem);
            }
        } catch (RuntimeException e) {
            throw MergeforgeError.of(e);
        }
    }

    /** The validated config; keys accepted for mergekit compatibility that change nothing are never ignored silently (docs/config.md). */
    private static MergeConfig read(MergeRequest req, EventListener listener) {
        MergeConfig cfg = req.readConfig();
        for (String key : ConfigKeys.notActedOn(cfg.raw())) {
            listener.on(new Event.Warning(req.source() + ": " + key + " is accepted for mergekit compatibility but changes nothing in mergeforge's output"));
        }
        return cfg;
    }

    private static Planner.Inputs inputs(MergeRequest req, EventListener listener) {
        Planner.Inputs inputs = new Planner.Inputs();
        if (req.allowCrimes()) inputs.allowCrimes(m -> listener.on(new Event.Warning(m.startsWith("warning: ") ? m.substring(9) : m)));
        return inputs;
    }

    private static long budget(MergeRequest req) {
        return req.maxMemoryBytes() > 0 ? req.maxMemoryBytes() : MemoryBudget.defaultBytes();
    }

    /**
     * The merge's events with {@code budget} sent before the first tensor (or before done, with none):
     * a merge refused before it writes anything (an existing output, say) says only its error.
     */
    private static Events budgetBeforeFirstTensor(Events ev, Runnable budget) {
        return new Events() {
            private boolean pending = true;

            private void flush() {
                if (pending) budget.run();
                pending = false;
            }

            @Override public void start(String method, int tensors, long bytesIn, long bytesOut, String backend) { ev.start(method, tensors, bytesIn, bytesOut, backend); }
            @Override public void tensor(int i, int total, String name, long bi, long bo, double s) { flush(); ev.tensor(i, total, name, bi, bo, s); }
            @Override public void note(String message) { ev.note(message); }
            @Override public void done(String o, int t, long bi, long bo, double s, long pw, long pr) { flush(); ev.done(o, t, bi, bo, s, pw, pr); }
            @Override public void error(String message, int exitCode) { ev.error(message, exitCode); }
        };
    }

    private static PlanResult summary(Planner.Plan plan, long maxShard, MemoryBudget.Estimate mem) {
        ShardPlan shards = Merger.shards(plan, maxShard);
        MergeConfig cfg = plan.config();
        List<PlanResult.SliceSource> slices = new ArrayList<>();
        cfg.slices().forEach(s -> s.sources().forEach(src -> slices.add(new PlanResult.SliceSource(src.model(), src.layerStart(), src.layerEnd()))));
        return new PlanResult(cfg.method().name(), cfg.baseModel(), cfg.models().stream().map(m -> m.model()).toList(), slices,
                plan.tensors().size(), plan.outLayers(), plan.inBytes(), shards.totalFileBytes(), shards.fileNames(),
                Merger.workingBytesEstimate(plan), plan.maxInputs(), plan.largestElements(), cfg.aim() == null ? null : cfg.aim().omega(),
                mem.peakBytes(), mem.describe());
    }

    /** Computes the request's statistic and writes it to its output (atomically: a temporary file renamed at the end). */
    public static CalibrateResult calibrate(CalibrateRequest req, EventListener listener, CancellationToken cancel) {
        String what = "calibration of " + req.model();
        Path tmp = req.output().toAbsolutePath().resolveSibling("." + req.output().getFileName() + ".mergeforge-tmp-" + ProcessHandle.current().pid()
                + "-" + Thread.currentThread().threadId());
        try {
            cancel.check(what);
            if (req.data() != null && !Files.isRegularFile(req.data())) {
                throw new ConfigException("--data " + req.data() + ": file not found; give a text file, JSONL with \"text\" or with \"input_ids\"");
            }
            Calibrator.Settings s = new Calibrator.Settings(req.samples(), req.seqLen(), req.seed(), req.threads(),
                    req.useCache() ? Calibration.cacheDir() : null, req.device());
            Path dir;
            try (Checkpoint c = Checkpoint.open(req.model())) {
                dir = c.dir();
            }
            long t0 = System.nanoTime();
            listener.on(new Event.Note("calibrating " + dir + " (" + req.stat() + ")"));
            if (req.stat().equals("gram")) GramCalibrator.calibrate(dir, req.data(), s, tmp);
            else Calibrator.calibrate(dir, req.data(), s, tmp);
            cancel.check(what);
            Files.move(tmp, req.output(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return new CalibrateResult(req.output(), (System.nanoTime() - t0) / 1e9);
        } catch (IOException e) {
            throw MergeforgeError.of(new UncheckedIOException("cannot move the stats file into " + req.output() + ": " + e.getMessage()
                    + "; check the permissions of its folder", e));
        } catch (RuntimeException e) {
            throw MergeforgeError.of(e);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // best effort: the name says what it is
            }
        }
    }

    /** Scores the model on the request's text and task files. */
    public static EvalResult eval(EvalRequest req, EventListener listener, CancellationToken cancel) {
        String what = "eval of " + req.model();
        try {
            cancel.check(what);
            checkEvalFiles(req);
            Parallel par = new Parallel(req.threads());
            try (Checkpoint c = Checkpoint.open(req.model());
                 LlamaModel m = LlamaModel.open(c.dir(), par, true);
                 TextTokenizer tok = TextTokenizer.open(c.dir())) {
                return score(m, tok, c.ref(), req, listener, cancel, what);
            } finally {
                par.shutdown();
            }
        } catch (RuntimeException e) {
            throw MergeforgeError.of(e);
        }
    }

    /** Refuses missing text or task files and an unusable device before any work. */
    private static void checkEvalFiles(EvalRequest req) {
        List<Path> files = new ArrayList<>(req.tasks());
        if (req.text() != null) files.add(req.text());
        for (Path p : files) {
            if (!Files.isRegularFile(p)) throw new ConfigException("mergeforge eval: file " + p + " not found; check the path");
        }
        CudaForward.checkDevice(req.device());
    }

    /** Scores the open model {@code m} (named {@code ref} in the result) on the request's text and task files. */
    private static EvalResult score(LlamaModel m, TextTokenizer tok, String ref, EvalRequest req, EventListener listener,
                                    CancellationToken cancel, String what) {
        return CudaForward.apply(m, req.device(), f -> {
            EvalResult.TextResult text = null;
            if (req.text() != null) {
                TextLoss l = Evaluator.textLoss(m, f, tok, Evaluator.readDocuments(req.text()), req.maxTokens());
                text = new EvalResult.TextResult(req.text(), l.meanNll(), l.perplexity(), l.tokens(), l.documents());
                listener.on(new Event.Note("scored " + req.text()));
            }
            List<EvalResult.TaskResult> tasks = new ArrayList<>();
            for (Path p : req.tasks()) {
                cancel.check(what);
                TaskScore s = Evaluator.taskScore(m, f, tok, PromptAnswer.readJsonl(p), req.rows(), req.rows());
                tasks.add(new EvalResult.TaskResult(p, s.accuracy(), s.accuracyRows(), s.answerNll(), s.nllRows()));
                listener.on(new Event.Note("scored " + p));
            }
            return new EvalResult(ref, text, tasks);
        });
    }

    /** What a candidate is called in events and in its {@link EvalResult}. */
    static final String IN_MEMORY = "(merged candidate in memory)";

    /**
     * Merges a candidate and evaluates it without a checkpoint, in one of two modes
     * ({@link CandidateMode}, docs/protocol.md {@code merge_eval}): in memory — the merged tensors held
     * in their output dtypes (off-heap, {@link MemoryModel}) and the forward pass reading them there;
     * or layer by layer — each layer's tensors merged just before the forward pass reaches it, every
     * eval sequence run through that layer, then the layer dropped, so at most one layer's merged
     * tensors are alive (see {@link LayerByLayer}). AUTO takes memory when its predicted peak fits the
     * request's memory budget; a note says which mode ran and why. Nothing is written to any disk, and
     * the memory is freed before this returns, whatever happens. The scores equal those of
     * {@link #merge} to disk followed by {@link #eval} (layer by layer, greedy exact match is read off
     * the teacher-forced logits instead of decoding: the same decisions but for near-ties).
     *
     * <p>A config whose tokenizer source builds a new vocabulary (tokenizer files written by the
     * merge) is merged to a scratch folder on the RAM-backed {@code /dev/shm} instead (the temporary
     * folder where there is none, said in a note), read from there and removed before this returns;
     * it cannot be evaluated layer by layer.
     */
    public static MergeEvalResult mergeAndEval(MergeEvalRequest req, EventListener listener, CancellationToken cancel) {
        try {
            checkEvalFiles(req.eval(Path.of(IN_MEMORY)));
        } catch (RuntimeException e) {
            throw MergeforgeError.of(e);
        }
        Path[] scratch = {null};
        Parallel par = new Parallel(req.backend().threads());
        try {
            Candidate c = merging(req.merge(Path.of(IN_MEMORY)), "merge of a candidate", listener, cancel, (plan, inputs, o, mem) -> {
                Path tok = Merger.inMemoryTokenizer(plan, inputs);
                if (tok == null) {
                    if (req.mode() == CandidateMode.LAYERS) {
                        throw new ConfigException("merge-eval mode layers: the config's tokenizer_source builds a new vocabulary, which is "
                                + "written with a merged folder; use mode auto or memory for this config");
                    }
                    scratch[0] = scratchFolder(listener);
                    listener.on(new Event.Note("candidate in " + scratch[0]));
                    return new Candidate(null, Merger.run(plan, inputs, scratch[0].resolve("merged"), o), null);
                }
                LayerByLayer.Prepared p = LayerByLayer.prepare(plan, tok, req, par);
                LayerByLayer.Choice choice = LayerByLayer.choose(req.mode(), plan, p, mem.peakBytes(), mem.budget());
                listener.on(new Event.Note(choice.describe()));
                if (choice.mode() == CandidateMode.LAYERS) return new Candidate(null, null, LayerByLayer.run(plan, inputs, o, p, listener));
                return new Candidate(Merger.runInMemory(plan, inputs, o), null, null);
            });
            try (c) {
                if (c.layers() != null) {
                    LayerByLayer.Outcome l = c.layers();
                    return new MergeEvalResult(l.eval(), l.merge().tensors(), l.merge().seconds() - l.evalSeconds(), l.evalSeconds(),
                            l.merge().peakWorkingBytes(), CandidateMode.LAYERS, l.peakHeldBytes());
                }
                Merger.Result m = c.result();
                long t0 = System.nanoTime();
                EvalResult e = c.memory() == null ? eval(req.eval(m.output()), listener, cancel) : evalInMemory(c.memory().model(), req, listener, cancel);
                return new MergeEvalResult(e, m.tensors(), m.seconds(), (System.nanoTime() - t0) / 1e9, m.peakWorkingBytes(), CandidateMode.MEMORY,
                        m.bytesOut());
            }
        } finally {
            par.shutdown();
            if (scratch[0] != null) OutputDir.deleteTree(scratch[0]);
        }
    }

    /** A merged candidate: in memory, in a scratch folder (null memory), or already scored layer by layer. */
    private record Candidate(Merger.InMemory memory, Merger.Result folder, LayerByLayer.Outcome layers) implements AutoCloseable {
        Merger.Result result() { return memory != null ? memory.result() : folder; }

        @Override public void close() { if (memory != null) memory.close(); }
    }

    /** {@link #eval} of a merged model held in memory. */
    private static EvalResult evalInMemory(MemoryModel mm, MergeEvalRequest mreq, EventListener listener, CancellationToken cancel) {
        EvalRequest req = mreq.eval(Path.of(IN_MEMORY));
        String what = "eval of the merged candidate";
        try {
            cancel.check(what);
            Parallel par = new Parallel(req.threads());
            try (LlamaModel m = LlamaModel.inMemory(mm.config(), mm.tensors(), IN_MEMORY, mm.tokenizerDir(), par, true);
                 TextTokenizer tok = TextTokenizer.open(mm.tokenizerDir())) {
                return score(m, tok, IN_MEMORY, req, listener, cancel, what);
            } finally {
                par.shutdown();
            }
        } catch (RuntimeException e) {
            throw MergeforgeError.of(e);
        }
    }

    /**
     * The peak memory a {@link #mergeAndEval} of {@code req} is predicted to take, for the mode it
     * would run in (what {@code mergeforge serve} admits the job with): the merge's working memory
     * plus the candidate in memory or one layer at a time (see {@link LayerByLayer#choose}); a
     * candidate that goes to a scratch folder counts three times its bytes (its files and float32 weights).
     */
    public static long candidateBytes(MergeEvalRequest req) {
        Parallel par = new Parallel(1);
        try {
            MergeRequest mreq = req.merge(Path.of(System.getProperty("java.io.tmpdir"), "mergeforge-candidate-plan"));
            MergeConfig cfg = read(mreq, EventListener.NONE);
            try (Planner.Inputs inputs = inputs(mreq, EventListener.NONE)) {
                Planner.Plan plan = Planner.plan(cfg, inputs, StatsLocator.calibrating(Calibration.cacheDir(), m -> { }));
                String be = mreq.backend().backend();
                MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, budget(mreq), mreq.maxMemoryBytes() > 0,
                        true, !be.equals("java"), cfg.aim() != null, be.equals("cuda"));
                Path tok = Merger.inMemoryTokenizer(plan, inputs);
                if (tok == null) return mem.peakBytes() + 3 * plan.outBytes();
                LayerByLayer.Choice c = LayerByLayer.choose(req.mode(), plan, LayerByLayer.prepare(plan, tok, req, par), mem.peakBytes(), mem.budget());
                return c.mode() == CandidateMode.LAYERS ? c.layersBytes() : c.memoryBytes();
            }
        } catch (RuntimeException e) {
            throw MergeforgeError.of(e);
        } finally {
            par.shutdown();
        }
    }

    /** The dry run of a candidate's merge (its output would be a scratch folder). */
    public static PlanResult plan(MergeEvalRequest req, EventListener listener) {
        return plan(req.merge(Path.of(System.getProperty("java.io.tmpdir"), "mergeforge-candidate-plan")), listener);
    }

    /** A new scratch folder for a candidate, under {@link #memoryRoot}. */
    private static Path scratchFolder(EventListener listener) {
        try {
            return Files.createTempDirectory(memoryRoot(listener), "mergeforge-candidate-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a scratch folder for the candidate: " + e.getMessage()
                    + "; set java.io.tmpdir to a writable folder", e);
        }
    }

    /** /dev/shm when it is a writable folder, else java.io.tmpdir (with a note that the candidate then goes through it). */
    private static Path memoryRoot(EventListener listener) {
        Path shm = Path.of("/dev/shm");
        if (Files.isDirectory(shm) && Files.isWritable(shm)) return shm;
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        listener.on(new Event.Note("no RAM-backed /dev/shm: the candidate is written to " + tmp + " and removed after its eval"));
        return tmp;
    }
}
