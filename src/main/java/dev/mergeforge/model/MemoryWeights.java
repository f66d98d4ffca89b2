package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.TensorView;

import java.util.Map;

/**
 * A model's tensors already in memory (a merged candidate, see dev.mergeforge.run.MemoryModel):
 * the views are read as they are, in their stored dtypes, like mapped safetensors data.
 *
 * <p>Lifetime: the views belong to the caller, who keeps them valid until this is closed;
 * {@link #close()} releases nothing.
 */
final class MemoryWeights implements WeightSource {
    private final JsonNode config;
    private final Map<String, TensorView> tensors;
    private final String name;

    MemoryWeights(JsonNode config, Map<String, TensorView> tensors, String name) {
        this.config = config;
        this.tensors = Map.copyOf(tensors);
        this.name = name;
    }

    @Override public JsonNode config() { return config; }

    @Override public boolean contains(String name) { return tensors.containsKey(name); }

    @Override
    public TensorView tensor(String n) {
        TensorView v = tensors.get(n);
        if (v == null) throw new CheckpointException(name + ": no tensor named '" + n + "'; is this a Llama-family checkpoint?");
        return v;
    }

    @Override public String describe() { return name; }

    @Override public void close() {}
}
