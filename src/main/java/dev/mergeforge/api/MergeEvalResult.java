package dev.mergeforge.api;

/**
 * A candidate's scores, with what its merge and its evaluation took and how it was held: {@code mode}
 * is {@link CandidateMode#MEMORY} or {@link CandidateMode#LAYERS} (in that mode the forward pass runs
 * inside the merge; its time is {@code evalSeconds}, the rest {@code mergeSeconds}); {@code peakHeldBytes}
 * is the most bytes of merged tensors held at once (the whole model in memory; one stage layer by layer).
 */
public record MergeEvalResult(EvalResult eval, int tensors, double mergeSeconds, double evalSeconds, long peakWorkingBytes,
                              CandidateMode mode, long peakHeldBytes) {}
