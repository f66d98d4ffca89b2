package dev.mergeforge.api;

import java.nio.file.Path;
import java.util.List;

/** Scores of one model: on the text (null when none was asked for) and on each task file, in request order. */
public record EvalResult(String model, TextResult text, List<TaskResult> tasks) {
    public EvalResult {
        tasks = List.copyOf(tasks);
    }

    /** Mean token negative log-likelihood and perplexity (= exp(meanNll)) over the scored tokens. */
    public record TextResult(Path file, double meanNll, double perplexity, long tokens, int documents) {}

    /** Greedy exact-match accuracy and teacher-forced mean answer NLL, with the rows each is over. */
    public record TaskResult(Path file, double accuracy, int accuracyRows, double answerNll, int nllRows) {}
}
