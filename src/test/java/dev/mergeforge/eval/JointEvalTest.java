package dev.mergeforge.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.model.ForwardPassTest;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.model.TinyModel;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One pass over every sequence gives Evaluator's text loss and answer NLL bit for bit, and greedy
 * exact match read off the teacher-forced logits agrees with greedy decoding — on a row built to
 * match (the model's own greedy continuation, its third token made the EOS) and rows that do not.
 */
class JointEvalTest {
    @Test
    void oneJointPassScoresAsTheEvaluatorAndExactMatchAsGreedyDecoding(@TempDir Path dir) throws IOException {
        TinyModel tiny = ForwardPassTest.mistral();
        Path m = tiny.write(dir.resolve("m"), DType.F32);
        EvaluatorTest.writeCharTokenizer(m, tiny.vocab());
        Parallel par = new Parallel(2);
        try {
            // a prompt whose greedy continuation starts with two letters: they are the answer, the token after them the EOS
            String prompt = null;
            int[] g = null;
            try (LlamaModel model = LlamaModel.open(m, par, true)) {
                for (String p : List.of("abc", "cab", "bad", "ace", "dab", "bead", "face", "cafe")) {
                    int[] c = Evaluator.greedy(model, EvaluatorTest.cat(new int[] {1}, EvaluatorTest.ids(p)), 3, -1);
                    if (c[0] >= 4 && c[1] >= 4 && c[0] < tiny.vocab() && c[1] < tiny.vocab()) {
                        prompt = p;
                        g = c;
                        break;
                    }
                }
            }
            assertTrue(g != null, "some prompt continues with two letters");
            ObjectMapper json = new ObjectMapper();
            ObjectNode cfg = (ObjectNode) json.readTree(m.resolve("config.json").toFile());
            cfg.put("eos_token_id", g[2]);
            json.writeValue(m.resolve("config.json").toFile(), cfg);
            String answer = "" + letter(g[0]) + letter(g[1]);
            String wrong = "" + letter(g[0]) + letter(g[1] == 4 ? 5 : 4);
            List<PromptAnswer> rows = List.of(new PromptAnswer(prompt, answer), new PromptAnswer(prompt, wrong), new PromptAnswer("dd", "e"));
            List<String> docs = List.of("abcdefghij", "ppoonm", "a");
            try (LlamaModel model = LlamaModel.open(m, par, true); TextTokenizer tok = TextTokenizer.open(m)) {
                TaskScore ref = Evaluator.taskScore(model, tok, rows, 3, 3);
                TextLoss text = Evaluator.textLoss(model, tok, docs, 8);
                assertTrue(ref.accuracy() >= 1 / 3.0 && ref.accuracy() <= 2 / 3.0, "the built row matches, the wrong one does not: " + ref);

                JointEval je = JointEval.of(model.bosTokenId(), g[2], model.config().vocabSize(), "m", tok, docs, 8, List.of(rows, rows.subList(1, 3)), 3);
                int[][] seqs = je.sequences();
                assertEquals(3 + 3 + 2, seqs.length);
                assertThrows(IllegalStateException.class, je::textLoss, "scores before every sequence's logits");
                float[][] logits = model.logits(seqs);
                assertThrows(IllegalStateException.class, () -> je.accept(1, logits[1]), "sequences in order");
                for (int b = 0; b < seqs.length; b++) je.accept(b, logits[b]);

                assertEquals(text.meanNll(), je.textLoss().meanNll(), "bit for bit");
                assertEquals(text.tokens(), je.textLoss().tokens());
                TaskScore got = je.taskScore(0);
                assertEquals(ref.answerNll(), got.answerNll(), "bit for bit");
                assertEquals(ref.accuracy(), got.accuracy());
                assertEquals(3, got.accuracyRows());
                assertEquals(3, got.nllRows());
                TaskScore second = je.taskScore(1);
                assertEquals(Evaluator.taskScore(model, tok, rows.subList(1, 3), 3, 3).answerNll(), second.answerNll());
                assertEquals(ref.accuracy() - 1 / 3.0, second.accuracy() * 2 / 3.0, 1e-12, "the second task lacks the matching row");
            }
        } finally {
            par.shutdown();
        }
    }

    private static char letter(int id) { return (char) ('a' + id - 4); }
}
