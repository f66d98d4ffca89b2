package dev.mergeforge.eval;

/** Mean next-token negative log-likelihood (nats) over {@code tokens} predicted tokens. */
public record TextLoss(double meanNll, long tokens, int documents) {
    public double perplexity() { return Math.exp(meanNll); }
}
