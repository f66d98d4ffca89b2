package dev.mergeforge.eval;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.model.ForwardPassTest;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.ReferenceForward;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.model.TinyModel;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Evaluator numbers against the double reference forward on a tiny model with a character tokenizer. */
class EvaluatorTest {
    /** ids 0..3 special (<pad> <s> </s> <unk>), then one id per letter a.. */
    static void writeCharTokenizer(Path dir, int vocab) throws IOException {
        StringBuilder v = new StringBuilder("\"<pad>\": 0, \"<s>\": 1, \"</s>\": 2, \"<unk>\": 3");
        for (int i = 4; i < vocab; i++) v.append(", \"").append((char) ('a' + i - 4)).append("\": ").append(i);
        StringBuilder added = new StringBuilder();
        String[] sp = {"<pad>", "<s>", "</s>", "<unk>"};
        for (int i = 0; i < 4; i++) {
            if (i > 0) added.append(',');
            added.append("{\"id\":").append(i).append(",\"content\":\"").append(sp[i])
                    .append("\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}");
        }
        Files.writeString(dir.resolve("tokenizer.json"), "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":["
                + added + "],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Fuse\"},"
                + "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
                + "\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":{" + v
                + "},\"merges\":[]}}");
    }

    static double nll(double[] row, int target) {
        double max = Double.NEGATIVE_INFINITY, z = 0;
        for (double x : row) max = Math.max(max, x);
        for (double x : row) z += Math.exp(x - max);
        return Math.log(z) + max - row[target];
    }

    static int[] ids(String s) {
        int[] r = new int[s.length()];
        for (int i = 0; i < r.length; i++) r[i] = s.charAt(i) - 'a' + 4;
        return r;
    }

    static int[] cat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] r = new int[n];
        int at = 0;
        for (int[] p : parts) { System.arraycopy(p, 0, r, at, p.length); at += p.length; }
        return r;
    }

    @Test
    void textLossAndTaskScoresMatchTheReference(@TempDir Path dir) throws IOException {
        TinyModel tiny = ForwardPassTest.mistral();
        Path m = tiny.write(dir.resolve("m"), DType.F32);
        writeCharTokenizer(m, tiny.vocab());
        ReferenceForward ref = new ReferenceForward(tiny);
        List<String> docs = List.of("abcdefghij", "ppoonm", "a");
        // each document: <s> + its first 7 tokens (max 8); "a" scores one token
        double sum = 0;
        int n = 0;
        for (String d : docs) {
            int[] s = cat(new int[] {1}, ids(d.substring(0, Math.min(7, d.length()))));
            double[][] lg = ref.logits(s);
            for (int t = 0; t + 1 < s.length; t++, n++) sum += nll(lg[t], s[t + 1]);
        }
        List<PromptAnswer> rows = List.of(new PromptAnswer("abc", "cab"), new PromptAnswer("tt", "k"), new PromptAnswer("hh", "tt"));
        double aSum = 0;
        int aN = 0, correct = 0;
        for (int r = 0; r < 2; r++) {
            int[] p = cat(new int[] {1}, ids(rows.get(r).prompt())), a = ids(rows.get(r).answer());
            int[] s = cat(p, a, new int[] {2});
            double[][] lg = ref.logits(s);
            for (int t = p.length; t < s.length; t++, aN++) aSum += nll(lg[t - 1], s[t]);
        }
        for (int r = 0; r < 3; r++) {
            // greedy by the reference: argmax until </s> or answer length + 1 tokens
            int[] seq = cat(new int[] {1}, ids(rows.get(r).prompt())), a = ids(rows.get(r).answer());
            int[] want = cat(a, new int[] {2});
            boolean ok = true;
            for (int k = 0; k < want.length; k++) {
                double[] last = ref.logits(seq)[seq.length - 1];
                int best = 0;
                for (int v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
                if (best != want[k]) { ok = false; break; }
                seq = cat(seq, new int[] {best});
            }
            if (ok) correct++;
        }
        Parallel par = new Parallel(2);
        try (LlamaModel model = LlamaModel.open(m, par, true); TextTokenizer tok = TextTokenizer.open(m)) {
            TextLoss loss = Evaluator.textLoss(model, tok, docs, 8);
            assertEquals(n, loss.tokens());
            assertEquals(sum / n, loss.meanNll(), 1e-5);
            assertEquals(Math.exp(sum / n), loss.perplexity(), 1e-4);
            TaskScore score = Evaluator.taskScore(model, tok, rows, 3, 2);
            assertEquals(aSum / aN, score.answerNll(), 1e-5);
            assertEquals(correct / 3.0, score.accuracy(), 1e-12);
            assertEquals(2, score.nllRows());
        } finally {
            par.shutdown();
        }
    }

    @Test
    void greedyStopsAtTheEndToken(@TempDir Path dir) throws IOException {
        TinyModel tiny = ForwardPassTest.qwen2();
        Path m = tiny.write(dir.resolve("m"), DType.F32);
        ReferenceForward ref = new ReferenceForward(tiny);
        int[] prompt = {1, 5, 6};
        Parallel par = new Parallel(1);
        try (LlamaModel model = LlamaModel.open(m, par, true)) {
            int[] got = Evaluator.greedy(model, prompt, 6, 2);
            int[] seq = prompt;
            for (int k = 0; k < got.length; k++) {
                double[] last = ref.logits(seq)[seq.length - 1];
                int best = 0;
                for (int v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
                assertEquals(best, got[k], "step " + k);
                seq = cat(seq, new int[] {best});
                if (best == 2) assertEquals(k + 1, got.length);
            }
            assertEquals(true, got.length == 6 || got[got.length - 1] == 2);
        } finally {
            par.shutdown();
        }
    }
}
