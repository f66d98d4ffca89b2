package dev.mergeforge.merge.chunk;

import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;

import java.util.List;
import java.util.function.Consumer;

/**
 * What a chunked method knows of one tensor when it plans its passes: everything but the values.
 *
 * @param tensor    output tensor name (for messages and random keys)
 * @param shape     the tensor's shape
 * @param params    per-model parameters, aligned with the models
 * @param baseIndex index of the model that is the base model, or -1
 * @param hasBase   whether the tensor has a base input
 * @param seed      the run's seed
 * @param log       one-line notes for the merge log
 * @param stats     the per-model statistic views of a data-informed method, aligned with the models
 *                  (Fisher: the tensor's shape, streamed by the runner; RegMean: the [in, in] Grams,
 *                  which the program reads itself when it runs), or empty. Only views: planning
 *                  reads no value of them.
 * @param arrays    float64 heap arrays the merge's programs hand on from tensor to tensor (RegMean's
 *                  solves); the merge's own, or a fresh one for a tensor planned alone
 */
public record TensorSetup(String tensor, Shape shape, List<Params> params, int baseIndex, boolean hasBase, long seed, Consumer<String> log,
                          List<TensorView> stats, HostArrays arrays) {
    public TensorSetup {
        java.util.Objects.requireNonNull(arrays, "arrays");
        params = List.copyOf(params);
        stats = List.copyOf(stats);
        if (!stats.isEmpty() && stats.size() != params.size()) throw new IllegalArgumentException(tensor + ": one statistic per model or none, got " + stats.size());
    }

    /** A tensor planned alone: arrays of its own. */
    public TensorSetup(String tensor, Shape shape, List<Params> params, int baseIndex, boolean hasBase, long seed, Consumer<String> log,
                       List<TensorView> stats) {
        this(tensor, shape, params, baseIndex, hasBase, seed, log, stats, new HostArrays());
    }

    /** A tensor without statistics. */
    public TensorSetup(String tensor, Shape shape, List<Params> params, int baseIndex, boolean hasBase, long seed, Consumer<String> log) {
        this(tensor, shape, params, baseIndex, hasBase, seed, log, List.of());
    }

    /** Indices of the models that are not the base (the ones with task vectors). */
    public int[] nonBase() {
        return java.util.stream.IntStream.range(0, params.size()).filter(i -> i != baseIndex).toArray();
    }

    public long numel() { return shape.numel(); }

    public void note(String message) { log.accept(message); }
}
