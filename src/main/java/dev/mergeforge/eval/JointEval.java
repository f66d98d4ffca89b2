package dev.mergeforge.eval;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.model.TextTokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * {@link Evaluator}'s scores — text loss, and per task file answer NLL and greedy exact match over
 * its first {@code rows} rows — from one pass that runs every sequence once: all of them are built
 * first ({@link #sequences}), then their logits are handed in, in order ({@link #accept}). For a
 * forward pass that visits each layer once for every sequence together (a candidate evaluated layer
 * by layer, docs/protocol.md).
 *
 * <p>The sequences and the sums are Evaluator's, in the same order, so text loss and answer NLL equal
 * Evaluator's bit for bit when the logits do. Greedy exact match is read off the same teacher-forced
 * logits instead of decoding: greedy decoding reproduces the answer (and EOS) exactly when, at each
 * answer position, the argmax of the previous position's logits is the answer's token — and the
 * teacher-forced pass sees exactly the prompt and the answer's earlier tokens there. The two agree
 * except where rounding differences between a one-token decoding step and a whole-sequence pass
 * flip a near-tie.
 */
public final class JointEval {
    private final int vocab;
    private final List<int[]> seqs = new ArrayList<>();
    private final int textCount;
    private final List<int[]> promptLengths = new ArrayList<>(); // per task, per row
    private final List<Integer> taskStart = new ArrayList<>();
    private int next;
    private double textSum;
    private long textTokens;
    private final double[] nllSum;
    private final long[] nllTokens;
    private final int[] correct;

    private JointEval(int vocab, int textCount, int tasks) {
        this.vocab = vocab;
        this.textCount = textCount;
        this.nllSum = new double[tasks];
        this.nllTokens = new long[tasks];
        this.correct = new int[tasks];
    }

    /**
     * The eval of {@code docs} (null: no text) at {@code maxTokens} tokens a document and of each of
     * {@code tasks}' first {@code rows} rows, for a model with these BOS (−1: none) and EOS ids and
     * vocabulary size; {@code model} names it in messages.
     */
    public static JointEval of(int bos, int eos, int vocab, String model, TextTokenizer tok, List<String> docs, int maxTokens,
                               List<List<PromptAnswer>> tasks, int rows) {
        if (maxTokens < 2) throw new ConfigException("eval max tokens must be >= 2, got " + maxTokens);
        if (!tasks.isEmpty() && eos < 0) throw new ConfigException(model + "/config.json: no eos_token_id, which ends every answer; add it");
        List<int[]> text = docs == null ? List.of() : Evaluator.textSequences(bos, tok, docs, maxTokens);
        JointEval e = new JointEval(vocab, text.size(), tasks.size());
        e.seqs.addAll(text);
        for (List<PromptAnswer> task : tasks) {
            int n = Math.min(rows, task.size());
            int[] lens = new int[n];
            e.taskStart.add(e.seqs.size());
            for (int r = 0; r < n; r++) {
                Evaluator.TaskSequence ts = Evaluator.taskSequence(bos, eos, tok, task.get(r));
                e.seqs.add(ts.ids());
                lens[r] = ts.promptLength();
            }
            e.promptLengths.add(lens);
        }
        return e;
    }

    /** Every sequence to run: the text's, then each task's rows. */
    public int[][] sequences() { return seqs.toArray(int[][]::new); }

    /** The logits [len, vocab] of sequence {@code index}; sequences come in order. */
    public void accept(int index, float[] logits) {
        if (index != next) throw new IllegalStateException("logits of sequence " + index + " given, expected " + next);
        int[] s = seqs.get(index);
        if (logits.length != s.length * vocab) throw new IllegalArgumentException("sequence " + index + ": " + logits.length + " logits for " + s.length + " tokens");
        next++;
        if (index < textCount) {
            for (int t = 0; t + 1 < s.length; t++) {
                // −log softmax(logits[t])[ids[t+1]]
                textSum += Evaluator.nll(logits, t, vocab, s[t + 1]);
                textTokens++;
            }
            return;
        }
        int task = taskStart.size() - 1;
        while (taskStart.get(task) > index) task--;
        int p = promptLengths.get(task)[index - taskStart.get(task)];
        boolean match = true;
        // answer tokens and EOS at positions p..len−1, each predicted from the position before
        for (int t = p; t < s.length; t++) {
            nllSum[task] += Evaluator.nll(logits, t - 1, vocab, s[t]);
            match &= Evaluator.argmax(logits, (t - 1) * vocab, vocab) == s[t];
        }
        nllTokens[task] += s.length - p;
        if (match) correct[task]++;
    }

    /** The text loss, or null when no text was given; after every sequence's logits. */
    public TextLoss textLoss() {
        requireDone();
        return textCount == 0 ? null : new TextLoss(textSum / textTokens, textTokens, textCount);
    }

    /** Task {@code i}'s scores (accuracy and NLL over the same rows); after every sequence's logits. */
    public TaskScore taskScore(int i) {
        requireDone();
        int n = promptLengths.get(i).length;
        return new TaskScore(n == 0 ? 0 : (double) correct[i] / n, n, nllTokens[i] == 0 ? Double.NaN : nllSum[i] / nllTokens[i], n);
    }

    private void requireDone() {
        if (next != seqs.size()) throw new IllegalStateException("scores asked for after " + next + " of " + seqs.size() + " sequences");
    }
}
