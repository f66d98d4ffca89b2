package dev.mergeforge.api;

/** A candidate's scores, with what its merge and its evaluation took. */
public record MergeEvalResult(EvalResult eval, int tensors, double mergeSeconds, double evalSeconds, long peakWorkingBytes) {}
