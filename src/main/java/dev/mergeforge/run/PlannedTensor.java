package dev.mergeforge.run;

import dev.mergeforge.io.TensorView;
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
 */
public record PlannedTensor(String name, Shape shape, DType outDtype, TensorView base, List<TensorView> inputs,
                            List<Params> params, Params global, int baseIndex, int layer, boolean copyOnly) {
    public PlannedTensor {
        inputs = List.copyOf(inputs);
        params = List.copyOf(params);
    }

    /** Bytes this tensor takes in the output file. */
    public long outBytes() { return Math.multiplyExact(shape.numel(), (long) outDtype.byteSize()); }

    /** Bytes read from the inputs (the base counted once even when listed among the models). */
    public long inBytes() {
        long b = base == null ? 0 : base.data().byteSize();
        for (int i = 0; i < inputs.size(); i++) if (i != baseIndex) b += inputs.get(i).data().byteSize();
        return b;
    }
}
