package dev.mergeforge.api;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.eval.Evaluator;
import dev.mergeforge.eval.JointEval;
import dev.mergeforge.eval.PromptAnswer;
import dev.mergeforge.eval.TaskScore;
import dev.mergeforge.eval.TextLoss;
import dev.mergeforge.model.ModelConfig;
import dev.mergeforge.model.StagedForward;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.run.LayerFeed;
import dev.mergeforge.run.Merger;
import dev.mergeforge.run.PlannedTensor;
import dev.mergeforge.run.Planner;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A merge-eval candidate evaluated layer by layer (docs/protocol.md, {@code merge_eval}): the eval's
 * sequences are built first, then the candidate is merged stage by stage — embeddings, each decoder
 * layer, final norm and head ({@link LayerFeed}) — and every sequence goes through a stage
 * ({@link StagedForward}) before the next stage is merged; the scores are read off the logits at the
 * end ({@link JointEval}). Also the prediction that chooses between this and the candidate in memory.
 */
final class LayerByLayer {
    private LayerByLayer() {}

    /** The eval's sequences and pass for a candidate whose config.json and tokenizer are known. */
    record Prepared(StagedForward pass, JointEval scores, List<List<String>> stages, List<Path> taskFiles, Path textFile) {}

    /**
     * Builds the sequences of {@code req}'s text and task files for the candidate {@code plan}
     * (its tokenizer in {@code tokenizerDir}) and the stages that feed its pass.
     */
    static Prepared prepare(Planner.Plan plan, Path tokenizerDir, MergeEvalRequest req, Parallel par) {
        StagedForward f = new StagedForward(LayerFeed.outputConfig(plan), Mergeforge.IN_MEMORY, tokenizerDir, par);
        ModelConfig c = f.config();
        // the output config.json follows the merged layers (OutputFiles rewrites the count for slices)
        if (c.layers() != plan.outLayers()) {
            throw new IllegalStateException("the candidate's config.json says " + c.layers() + " layers but the merge makes " + plan.outLayers());
        }
        List<List<PromptAnswer>> tasks = new ArrayList<>();
        for (Path p : req.tasks()) tasks.add(PromptAnswer.readJsonl(p));
        JointEval je;
        try (TextTokenizer tok = TextTokenizer.open(tokenizerDir)) {
            je = JointEval.of(f.bosTokenId(), c.eosTokenId(), c.vocabSize(), Mergeforge.IN_MEMORY, tok,
                    req.text() == null ? null : Evaluator.readDocuments(req.text()), req.maxTokens(), tasks, req.rows());
        }
        List<List<String>> stages = new ArrayList<>();
        stages.add(f.embeddingNames());
        stages.addAll(LayerFeed.layerStages(plan));
        Set<String> names = new HashSet<>();
        for (PlannedTensor t : plan.tensors()) names.add(t.name());
        stages.add(f.headNames(names::contains));
        return new Prepared(f, je, stages, req.tasks(), req.text());
    }

    /** The mode that runs, with the predicted peaks it was chosen by. */
    record Choice(CandidateMode mode, long memoryBytes, long layersBytes, long budget, boolean asked) {
        /** One line for the log: the mode and why. */
        String describe() {
            return String.format(Locale.ROOT, "candidate mode: %s (%s; predicted peak in memory %.2f GB, layer by layer %.2f GB, budget %.2f GB)",
                    mode == CandidateMode.LAYERS ? "layers, each layer merged as the forward pass reaches it" : "memory, the whole candidate held",
                    asked ? "asked for" : mode == CandidateMode.LAYERS ? "in memory would not fit the budget" : "fits the budget",
                    memoryBytes / 1e9, layersBytes / 1e9, budget / 1e9);
        }
    }

    /**
     * The peak each mode is predicted to need on top of the merge's own ({@code mergePeak}) and the
     * mode {@code asked} resolves to: AUTO takes memory when its prediction fits {@code budget}.
     * In memory: the merged model, the float32 copies of every layer the eval keeps, lm_head in float32
     * (or a slab of it), and a batch of sequences' hidden states and logits. Layer by layer: the largest
     * stage's merged bytes and float32 copy, every sequence's residual stream, one sequence's logits.
     */
    static Choice choose(CandidateMode asked, Planner.Plan plan, Prepared p, long mergePeak, long budget) {
        ModelConfig c = p.pass().config();
        Map<String, PlannedTensor> byName = new HashMap<>();
        for (PlannedTensor t : plan.tensors()) byName.put(t.name(), t);
        long hd = c.hiddenSize(), vocab = c.vocabSize();
        int[][] seqs = p.scores().sequences();
        long tokens = 0, maxLen = 0;
        for (int[] s : seqs) {
            tokens += s.length;
            maxLen = Math.max(maxLen, s.length);
        }
        long scratch = 4L * maxLen * p.pass().scratchFloatsPerToken();
        long head = 4L * p.pass().headFloats();
        long layersF32 = 0, stageOut = 0, stageF32 = 0;
        List<List<String>> stages = p.stages();
        for (int s = 0; s < stages.size(); s++) {
            long out = 0, f32 = 0;
            for (String n : stages.get(s)) {
                PlannedTensor t = byName.get(n);
                if (t == null) continue;
                out += t.outBytes();
                if (s > 0 && s < stages.size() - 1) f32 += 4L * t.shape().numel();
            }
            layersF32 += f32;
            stageOut = Math.max(stageOut, out);
            stageF32 = Math.max(stageF32, f32);
        }
        long batch = Math.min(seqs.length, 32) * maxLen;
        long memory = mergePeak + plan.outBytes() + layersF32 + head + 4L * batch * (vocab + hd) + scratch;
        long layers = mergePeak + stageOut + stageF32 + head + 4L * tokens * hd + 4L * maxLen * (vocab + hd) + scratch;
        CandidateMode mode = asked != CandidateMode.AUTO ? asked : memory <= budget ? CandidateMode.MEMORY : CandidateMode.LAYERS;
        return new Choice(mode, memory, layers, budget, asked != CandidateMode.AUTO);
    }

    /** What the layer-by-layer run gives back: the scores, the merge's report, the bytes held and the pass's seconds. */
    record Outcome(EvalResult eval, Merger.Result merge, long peakHeldBytes, double evalSeconds) {}

    /** Merges the candidate stage by stage through its pass, then reads the scores off the logits. */
    static Outcome run(Planner.Plan plan, Planner.Inputs inputs, Merger.Options o, Prepared p, EventListener listener) {
        StagedForward f = p.pass();
        JointEval je = p.scores();
        int[][] seqs = je.sequences();
        int last = p.stages().size() - 1;
        LayerFeed.Result r = LayerFeed.run(plan, inputs, o, p.stages(), (s, w) -> {
            if (s == 0) f.start(seqs, w);
            else if (s < last) f.layer(s - 1, w);
            else f.finish(w, je::accept);
        });
        long t0 = System.nanoTime();
        EvalResult.TextResult text = null;
        TextLoss l = je.textLoss();
        if (l != null) {
            text = new EvalResult.TextResult(p.textFile(), l.meanNll(), l.perplexity(), l.tokens(), l.documents());
            listener.on(new Event.Note("scored " + p.textFile()));
        }
        List<EvalResult.TaskResult> tasks = new ArrayList<>();
        for (int i = 0; i < p.taskFiles().size(); i++) {
            TaskScore s = je.taskScore(i);
            tasks.add(new EvalResult.TaskResult(p.taskFiles().get(i), s.accuracy(), s.accuracyRows(), s.answerNll(), s.nllRows()));
            listener.on(new Event.Note("scored " + p.taskFiles().get(i)));
        }
        double scoring = (System.nanoTime() - t0) / 1e9;
        return new Outcome(new EvalResult(Mergeforge.IN_MEMORY, text, tasks), r.merge(), r.peakHeldBytes(), r.stageSeconds() + scoring);
    }
}
