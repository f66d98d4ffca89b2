package dev.mergeforge.merge;

import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * The float32 inputs of one output tensor, in config order.
 *
 * @param tensor     output tensor name (for messages and random keys)
 * @param base       the base model's tensor, or null when the config has no base_model
 * @param models     the tensors of {@code models:} in config order; if the base model is also listed
 *                   there, its tile appears here too (see {@code baseIndex})
 * @param params     per-model parameters resolved for this tensor (weight, density, ...), aligned with models
 * @param baseIndex  index in {@code models} of the entry that is the base model, or -1
 * @param layer      decoder layer index of the tensor, or -1 for tensors outside the layers
 * @param stats      per-model statistic tiles aligned with models (Fisher: the tensor's shape; Gram:
 *                   [in, in]), or empty when the method needs none or this tensor has none
 */
public record MergeInputs(String tensor, Tile base, List<Tile> models, List<Params> params, int baseIndex, int layer,
                          List<Tile> stats) {
    public MergeInputs {
        if (models.size() != params.size()) throw new IllegalArgumentException("one Params per model");
        models = List.copyOf(models);
        params = List.copyOf(params);
        stats = List.copyOf(stats);
        if (!stats.isEmpty() && stats.size() != models.size()) {
            throw new IllegalArgumentException("one stats tile per model or none, got " + stats.size() + " for " + models.size());
        }
    }

    /** Inputs without per-model statistics. */
    public MergeInputs(String tensor, Tile base, List<Tile> models, List<Params> params, int baseIndex, int layer) {
        this(tensor, base, models, params, baseIndex, layer, List.of());
    }

    /** Whether this tensor came with per-model statistics. */
    public boolean hasStats() { return !stats.isEmpty(); }

    /** Indices of the models that are not the base (the ones with task vectors). */
    public int[] nonBase() {
        return java.util.stream.IntStream.range(0, models.size()).filter(i -> i != baseIndex).toArray();
    }
}
