package dev.mergeforge.api;

import java.util.Locale;

/**
 * How {@link Mergeforge#mergeAndEval} holds a candidate (docs/protocol.md, {@code merge_eval}'s
 * {@code mode}): its whole merged model in memory, or one layer at a time, each merged as the
 * forward pass reaches it and dropped after.
 */
public enum CandidateMode {
    /** In memory when the predicted peak fits the memory budget, else layer by layer. */
    AUTO,
    /** Every merged tensor in memory, then the eval. */
    MEMORY,
    /** Each stage (embeddings, each decoder layer, final norm and head) merged when the forward pass needs it, then dropped. */
    LAYERS;

    /** The name on the wire and in messages: auto, memory, layers. */
    public String key() { return name().toLowerCase(Locale.ROOT); }
}
