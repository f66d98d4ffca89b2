package dev.mergeforge.model;

/**
 * Where a model's decoder runs over whole sequences: the CPU ({@link LlamaModel} itself) or a GPU
 * ({@code dev.mergeforge.model.cuda.CudaForward}). Both compute the same float32 forward pass
 * (to rounding) and report the same module inputs to an {@link ActivationObserver}.
 */
public interface ForwardPass {
    /**
     * Runs every sequence through the decoder, reporting each module's input to {@code obs};
     * returns, per sequence, the final normed hidden states [len, hidden] (lm_head's input).
     */
    float[][] hiddenStates(int[][] sequences, ActivationObserver obs);

    /** Logits [len, vocab] of every position of every sequence. */
    float[][] logits(int[][] sequences);

    /** Runs the pass for the observer alone (an implementation may skip returning the states). */
    default void observe(int[][] sequences, ActivationObserver obs) { hiddenStates(sequences, obs); }

    /** Where it runs, for the log: "cpu (8 threads)", "cuda:0 (NVIDIA H100 ...)". */
    String describe();
}
