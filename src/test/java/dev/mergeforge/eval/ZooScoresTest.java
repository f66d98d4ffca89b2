package dev.mergeforge.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.model.Zoo;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The evaluator reproduces reference/scores.json (computed with transformers, rounded to 4
 * decimals) for the zoo models: general loss, greedy accuracy and pooled answer NLL over the first
 * 100 rows of every task.
 */
class ZooScoresTest {
    @ParameterizedTest
    @ValueSource(strings = {"base", "ft_dup", "ft_swap", "ft_mirror"})
    void reproducesReferenceScores(String name) throws IOException {
        Path zoo = Zoo.dir();
        JsonNode ref = new ObjectMapper().readTree(zoo.resolve("reference/scores.json").toFile()).get(name);
        Parallel par = new Parallel(2);
        try (LlamaModel m = LlamaModel.open(zoo.resolve(name), par, true); TextTokenizer tok = TextTokenizer.open(zoo.resolve(name))) {
            TextLoss loss = Evaluator.textLoss(m, tok, Evaluator.readDocuments(zoo.resolve("data/general_eval.txt")), 128);
            assertEquals(64 * 127, loss.tokens());
            assertEquals(ref.get("general_loss").asDouble(), loss.meanNll(), 1e-4, name + " general_loss");
            for (String task : new String[] {"dup", "swap", "mirror"}) {
                TaskScore s = Evaluator.taskScore(m, tok, PromptAnswer.readJsonl(zoo.resolve("data/" + task + "_eval.jsonl")), 100, 100);
                assertEquals(ref.get(task).asDouble(), s.accuracy(), 1e-9, name + " " + task + " accuracy");
                assertEquals(ref.get(task + "_answer_nll").asDouble(), s.answerNll(), 1e-4, name + " " + task + "_answer_nll");
            }
        } finally {
            par.shutdown();
        }
    }
}
