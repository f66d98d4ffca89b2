package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Passthrough, mergekit's {@code passthrough.py}: the single input tensor, multiplied by its
 * per-model {@code scale} when one is given (the default 1.0 copies the bits unchanged, like
 * mergekit's absent scale). Used for layer stacking with {@code slices}.
 */
public record Passthrough() implements MergeMethod {

    public static final MethodSpec SPEC = new MethodSpec("passthrough",
            "copy the tensor of the one input model, optionally scaled",
            "https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md", MethodSpec.BaseUse.UNUSED, 1, 1,
            List.of(),
            List.of(ParamSpec.number("scale", 1.0, "multiply this model's tensor by scale")),
            g -> new Passthrough());

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        if (in.models().size() != 1) {
            throw new dev.mergeforge.errors.ConfigException("passthrough takes exactly one model per tensor, got "
                    + in.models().size() + " for tensor " + in.tensor() + "; use slices with one source each");
        }
        // out = scale · θ
        ctx.backend().scale(in.models().get(0), (float) in.params().get(0).number("scale", 1.0), out);
    }
}
