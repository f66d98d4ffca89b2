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
 * Model Breadcrumbs with TIES sign election (arXiv 2312.06795 + 2306.01708): the breadcrumbs
 * sparsification of {@link Breadcrumbs} (same deliberate difference for ⌊γ·n⌋ = 0), then
 * W_i = w_i·τ̂_i, sign election and the disjoint sum, normalize default false as in mergekit.
 */
public record BreadcrumbsTies(boolean normalize, boolean rescale, double lambda) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("breadcrumbs_ties",
            "Model Breadcrumbs sparsification followed by TIES sign election",
            "https://arxiv.org/abs/2312.06795", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(false), Specs.rescale(false), Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY, Specs.GAMMA),
            g -> new BreadcrumbsTies(g.flag("normalize", false), g.flag("rescale", false), g.number("lambda", 1.0)));

    public BreadcrumbsTies {
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "breadcrumbs_ties", (c, i, m, tv) -> Sparsify.outliers(c, i, m, tv, i.params().get(m).number("density", 1.0), i.params().get(m).number("gamma", 0.01), rescale), true, normalize, lambda);
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return TaskVectorPasses.program(in, "breadcrumbs_ties", new TaskVectorPasses.Outliers(rescale), true, normalize, lambda);
    }
}
