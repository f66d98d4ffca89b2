package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Linear DELLA (arXiv 2406.11617): the DELLA drop and rescale of {@link Della} without sign
 * election — θ₀ + λ·Σ w_i τ̂_i (normalize default false, rescale default true, as in mergekit).
 */
public record DellaLinear(boolean normalize, boolean rescale, double lambda) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("della_linear",
            "DELLA drop and L1 rescale, then a plain weighted sum of task vectors",
            "https://arxiv.org/abs/2406.11617", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(false), Specs.rescale(true), Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY, Specs.EPSILON),
            g -> new DellaLinear(g.flag("normalize", false), g.flag("rescale", true), g.number("lambda", 1.0)));

    public DellaLinear {
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "della_linear", (c, i, m, tv) -> Sparsify.della(c, i, m, tv, i.params().get(m).number("density", 1.0), i.params().get(m).number("epsilon", 0.15), rescale), false, normalize, lambda);
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return TaskVectorPasses.program(in, "della_linear", new TaskVectorPasses.Della(rescale), false, normalize, lambda);
    }
}
