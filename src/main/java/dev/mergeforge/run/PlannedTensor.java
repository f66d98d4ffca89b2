package dev.mergeforge.run;

import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

import java.util.List;

/**
 * One output tensor of a merge, fully resolved before any data is read.
 *
 * @param name      output name
 * @param shape     output shape (all inputs agree, checked by the planner)
 * @param outDtype  dtype written
 * @param base      base model's tensor, or null
 * @param inputs    one tensor per merged model, aligned with {@code params}
 * @param params    per-model parameters for this tensor
 * @param global    the method's global parameters for this tensor
 * @param baseIndex index in {@code inputs} that is the base model, or -1
 * @param layer     output layer index, -1 outside the layers
 * @param copyOnly  true for non-float tensors copied from the base (or first model) unchanged
 * @param stats     per-model statistic views aligned with {@code inputs} (Fisher or Gram), or empty
 */
public record PlannedTensor(String name, Shape shape, DType outDtype, TensorView base, List<TensorView> inputs,
                            List<Params> params, Params global, int baseIndex, int layer, boolean copyOnly,
                            List<TensorView> stats) {
    public PlannedTensor {
        inputs = List.copyOf(inputs);
        params = List.copyOf(params);
        stats = List.copyOf(stats);
        if (!stats.isEmpty() && stats.size() != inputs.size()) {
            throw new IllegalArgumentException(name + ": one stats view per input or none, got " + stats.size());
        }
    }

    /** A tensor without per-model statistics. */
    public PlannedTensor(String name, Shape shape, DType outDtype, TensorView base, List<TensorView> inputs,
                         List<Params> params, Params global, int baseIndex, int layer, boolean copyOnly) {
        this(name, shape, outDtype, base, inputs, params, global, baseIndex, layer, copyOnly, List.of());
    }

    /** The same tensor reading its base and inputs from other views of the same bytes (staged copies). */
    public PlannedTensor withViews(TensorView newBase, List<TensorView> newInputs) {
        return new PlannedTensor(name, shape, outDtype, newBase, newInputs, params, global, baseIndex, layer, copyOnly, stats);
    }

    /** The same tensor with per-model statistic views attached. */
    public PlannedTensor withStats(List<TensorView> s) {
        return new PlannedTensor(name, shape, outDtype, base, inputs, params, global, baseIndex, layer, copyOnly, s);
    }

    /** Bytes this tensor takes in the output file. */
    public long outBytes() { return Math.multiplyExact(shape.numel(), (long) outDtype.byteSize()); }

    /** Bytes read from the inputs (the base counted once even when listed among the models). */
    public long inBytes() {
        long b = base == null ? 0 : base.data().byteSize();
        for (int i = 0; i < inputs.size(); i++) if (i != baseIndex) b += inputs.get(i).data().byteSize();
        for (TensorView s : stats) b += s.data().byteSize();
        return b;
    }
}
