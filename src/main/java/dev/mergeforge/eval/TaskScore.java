package dev.mergeforge.eval;

/**
 * Scores on a prompt/answer task.
 *
 * @param accuracy  share of the first {@code accuracyRows} rows whose greedy continuation is
 *                  exactly the answer followed by the end token
 * @param answerNll teacher-forced NLL (nats) of the answer tokens and the end token, averaged
 *                  over all such tokens of the first {@code nllRows} rows (pooled, not per row)
 */
public record TaskScore(double accuracy, int accuracyRows, double answerNll, int nllRows) {}
