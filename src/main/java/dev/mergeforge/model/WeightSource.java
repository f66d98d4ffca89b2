package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.tensor.TensorView;

/**
 * Where a model's config and tensors come from. Package-private on purpose: a checkpoint folder
 * ({@link SafetensorsWeights}, the single place to swap for the project's checkpoint reader) or
 * tensors already in memory ({@link MemoryWeights}, a merged candidate). Views stay valid until
 * {@link #close()}.
 */
interface WeightSource extends AutoCloseable {
    JsonNode config();

    boolean contains(String name);

    /** The tensor, or a CheckpointException naming the model and the missing name. */
    TensorView tensor(String name);

    /** A short name of the model for messages and metadata (its directory). */
    String describe();

    @Override
    void close();
}
