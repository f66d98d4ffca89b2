package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Passthrough, mergekit's {@code passthrough.py}: the single input tensor, multiplied by its
 * per-model {@code scale} when one is given (the default 1.0 copies the bits unchanged, like
 * mergekit's absent scale). Used for layer stacking with {@code slices}. In chunks: one combine pass.
 */
public record Passthrough() implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("passthrough",
            "copy the tensor of the one input model, optionally scaled",
            "https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md", MethodSpec.BaseUse.UNUSED, 1, 1,
            List.of(),
            List.of(ParamSpec.number("scale", 1.0, "multiply this model's tensor by scale")),
            g -> new Passthrough());

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        float scale = scale(in.params(), in.tensor());
        // out = scale · θ
        ctx.backend().scale(in.models().get(0), scale, out);
    }

    /** One combine pass: out = scale · θ, chunk by chunk. */
    @Override
    public ChunkProgram program(TensorSetup in) {
        float scale = scale(in.params(), in.tensor());
        return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.model(0), scale, out));
    }

    /** The one model's scale; more or fewer models than one are a config error naming the tensor. */
    private static float scale(List<dev.mergeforge.merge.Params> params, String tensor) {
        if (params.size() != 1) {
            throw new dev.mergeforge.errors.ConfigException("passthrough takes exactly one model per tensor, got "
                    + params.size() + " for tensor " + tensor + "; use slices with one source each");
        }
        return (float) params.get(0).number("scale", 1.0);
    }
}
