package dev.mergeforge.eval;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.model.Decoding;
import dev.mergeforge.model.ForwardPass;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Quality measures for a merged (or any) model, as the zoo's reference scores define them:
 * language-model loss on documents, and on prompt/answer tasks greedy exact match and the
 * teacher-forced NLL of the answer. Every sequence starts with BOS when the model has one;
 * answers end with the model's EOS. Log-probabilities are computed in double from float32 logits.
 */
public final class Evaluator {
    /** Sequences run through the model together (bounds memory for long eval sets). */
    static final int BATCH = 32;

    private Evaluator() {}

    /** Mean NLL of each document's tokens: BOS + its first maxTokens−1 tokens, every next token predicted. */
    public static TextLoss textLoss(LlamaModel model, TextTokenizer tok, List<String> docs, int maxTokens) {
        return textLoss(model, model, tok, docs, maxTokens);
    }

    /** The same with the logits from {@code fwd} (the model itself, or a GPU pass over it). */
    public static TextLoss textLoss(LlamaModel model, ForwardPass fwd, TextTokenizer tok, List<String> docs, int maxTokens) {
        if (maxTokens < 2) throw new ConfigException("eval max tokens must be >= 2, got " + maxTokens);
        List<int[]> seqs = textSequences(model.bosTokenId(), tok, docs, maxTokens);
        double sum = 0;
        long n = 0;
        for (int b0 = 0; b0 < seqs.size(); b0 += BATCH) {
            int[][] batch = seqs.subList(b0, Math.min(seqs.size(), b0 + BATCH)).toArray(int[][]::new);
            float[][] logits = fwd.logits(batch);
            for (int b = 0; b < batch.length; b++) {
                for (int t = 0; t + 1 < batch[b].length; t++) {
                    // −log softmax(logits[t])[ids[t+1]]
                    sum += nll(logits[b], t, model.config().vocabSize(), batch[b][t + 1]);
                    n++;
                }
            }
        }
        return new TextLoss(sum / n, n, seqs.size());
    }

    /** The sequences {@link #textLoss} scores: BOS + each document's first maxTokens−1 tokens, documents of fewer than two left out. */
    static List<int[]> textSequences(int bos, TextTokenizer tok, List<String> docs, int maxTokens) {
        List<int[]> seqs = new ArrayList<>();
        for (String d : docs) {
            int[] ids = tok.encode(d);
            int[] s = withBos(bos, ids, Math.min(ids.length, bos >= 0 ? maxTokens - 1 : maxTokens));
            if (s.length >= 2) seqs.add(s);
        }
        if (seqs.isEmpty()) throw new ConfigException("no document has two tokens to score");
        return seqs;
    }

    /** A task row as {@link #taskScore} runs it teacher-forced: BOS + prompt + answer + EOS, and where the answer starts. */
    record TaskSequence(int[] ids, int promptLength) {}

    static TaskSequence taskSequence(int bos, int eos, TextTokenizer tok, PromptAnswer row) {
        int[] p = withBos(bos, tok.encode(row.prompt()), -1);
        int[] a = tok.encode(row.answer());
        int[] s = Arrays.copyOf(p, p.length + a.length + 1);
        System.arraycopy(a, 0, s, p.length, a.length);
        s[s.length - 1] = eos;
        return new TaskSequence(s, p.length);
    }

    /**
     * Scores a task: answer NLL over the first {@code nllRows} rows, greedy exact match over the
     * first {@code accuracyRows} (a value past the end means all rows). Open the model with
     * keepLayers for greedy decoding to be fast.
     */
    public static TaskScore taskScore(LlamaModel model, TextTokenizer tok, List<PromptAnswer> rows, int accuracyRows, int nllRows) {
        return taskScore(model, model, tok, rows, accuracyRows, nllRows);
    }

    /** The same with the answer NLL's logits from {@code fwd}; greedy decoding stays on the CPU model. */
    public static TaskScore taskScore(LlamaModel model, ForwardPass fwd, TextTokenizer tok, List<PromptAnswer> rows,
                                      int accuracyRows, int nllRows) {
        int eos = model.config().eosTokenId();
        if (eos < 0) throw new ConfigException(model.name() + "/config.json: no eos_token_id, which ends every answer; add it");
        int bos = model.bosTokenId(), vocab = model.config().vocabSize();
        int nNll = Math.min(nllRows, rows.size()), nAcc = Math.min(accuracyRows, rows.size());
        double nllSum = 0;
        long nllTokens = 0;
        for (int r0 = 0; r0 < nNll; r0 += BATCH) {
            int r1 = Math.min(nNll, r0 + BATCH);
            int[][] seqs = new int[r1 - r0][];
            int[] promptLen = new int[r1 - r0];
            for (int r = r0; r < r1; r++) {
                TaskSequence ts = taskSequence(bos, eos, tok, rows.get(r));
                seqs[r - r0] = ts.ids();
                promptLen[r - r0] = ts.promptLength();
            }
            float[][] logits = fwd.logits(seqs);
            for (int b = 0; b < seqs.length; b++) {
                int[] s = seqs[b];
                // answer tokens and EOS at positions promptLen..len−1, each predicted from the position before
                for (int t = promptLen[b]; t < s.length; t++) nllSum += nll(logits[b], t - 1, vocab, s[t]);
                nllTokens += s.length - promptLen[b];
            }
        }
        int correct = 0;
        for (int r = 0; r < nAcc; r++) {
            int[] p = withBos(bos, tok.encode(rows.get(r).prompt()), -1);
            int[] a = tok.encode(rows.get(r).answer());
            a = Arrays.copyOf(a, a.length + 1);
            a[a.length - 1] = eos;
            if (greedyMatches(model, p, a)) correct++;
        }
        return new TaskScore(nAcc == 0 ? 0 : (double) correct / nAcc, nAcc, nllTokens == 0 ? Double.NaN : nllSum / nllTokens, nNll);
    }

    /**
     * Whether greedy decoding of {@code prompt} yields exactly {@code expected}; stops at the first
     * wrong token (same answer as decoding in full, far cheaper for models that miss).
     */
    static boolean greedyMatches(LlamaModel model, int[] prompt, int[] expected) {
        Decoding d = model.startDecoding(prompt.length + expected.length);
        float[] logits = d.append(prompt, 0, prompt.length);
        for (int k = 0; k < expected.length; k++) {
            if (argmax(logits) != expected[k]) return false;
            if (k + 1 < expected.length) logits = d.append(expected, k, 1);
        }
        return true;
    }

    /** Greedy continuation of {@code prompt}: at most maxNew tokens, stopping after EOS. */
    public static int[] greedy(LlamaModel model, int[] prompt, int maxNew, int eos) {
        Decoding d = model.startDecoding(prompt.length + maxNew);
        float[] logits = d.append(prompt, 0, prompt.length);
        int[] out = new int[maxNew];
        int n = 0;
        while (n < maxNew) {
            int next = argmax(logits);
            out[n++] = next;
            if (next == eos || n == maxNew) break;
            logits = d.append(out, n - 1, 1);
        }
        return Arrays.copyOf(out, n);
    }

    /** Documents of a text file (one a line) or a JSONL file with a "text" field, for {@link #textLoss}. */
    public static TextLoss textLoss(Path modelDir, Path file, int maxTokens, int threads) {
        Parallel par = new Parallel(threads);
        try (LlamaModel model = LlamaModel.open(modelDir, par, true); TextTokenizer tok = TextTokenizer.open(modelDir)) {
            return textLoss(model, tok, readDocuments(file), maxTokens);
        } finally {
            par.shutdown();
        }
    }

    /** {@link #taskScore} on a {prompt, answer} JSONL file. */
    public static TaskScore taskScore(Path modelDir, Path jsonl, int accuracyRows, int nllRows, int threads) {
        Parallel par = new Parallel(threads);
        try (LlamaModel model = LlamaModel.open(modelDir, par, true); TextTokenizer tok = TextTokenizer.open(modelDir)) {
            return taskScore(model, tok, PromptAnswer.readJsonl(jsonl), accuracyRows, nllRows);
        } finally {
            par.shutdown();
        }
    }

    /** Documents of a text file (one a line) or of a JSONL file with a "text" field. */
    public static List<String> readDocuments(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
        } catch (IOException e) {
            throw new ConfigException("cannot read " + file + ": " + e.getMessage() + "; check the path", e);
        }
        if (lines.isEmpty() || !lines.get(0).stripLeading().startsWith("{")) return lines;
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<String> docs = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            try {
                var row = json.readTree(lines.get(i));
                if (!row.path("text").isTextual()) throw new ConfigException(file + " line " + (i + 1) + ": needs a string 'text'");
                docs.add(row.get("text").asText());
            } catch (IOException e) {
                throw new ConfigException(file + " line " + (i + 1) + ": not valid JSON");
            }
        }
        return docs;
    }

    private static int[] withBos(int bos, int[] ids, int keep) {
        int n = keep < 0 ? ids.length : keep;
        if (bos < 0) return Arrays.copyOf(ids, n);
        int[] s = new int[n + 1];
        s[0] = bos;
        System.arraycopy(ids, 0, s, 1, n);
        return s;
    }

    /** −log softmax(logits[row])[target], in double with the max subtracted. */
    static double nll(float[] logits, int row, int vocab, int target) {
        int o = row * vocab;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[o + i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.exp(logits[o + i] - max);
        return Math.log(sum) + max - logits[o + target];
    }

    static int argmax(float[] v) { return argmax(v, 0, v.length); }

    /** The index in [0, n) of the largest of v[off..off+n), the first of equal ones. */
    static int argmax(float[] v, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
        return best;
    }
}
