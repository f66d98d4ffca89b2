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
 * Model Breadcrumbs (Davari &amp; Belilovsky 2023, arXiv 2312.06795): from each τ_i drop the ⌊γ·n⌋
 * largest magnitudes and then the smallest so that ⌊d·n⌋ remain (when γ + d &gt; 1 fewer of the
 * largest are dropped), then task arithmetic. Pinned to mergekit ({@code sparsify.magnitude_outliers},
 * no consensus, normalize default false). Deliberate difference: where ⌊γ·n⌋ = 0 (γ = 0, or a tensor
 * smaller than 1/γ elements) mergekit&#39;s slice {@code indices[n_bot:-0]} is empty and zeroes the whole
 * task vector; we keep its ⌊d·n⌋ largest entries as intended. Ties in magnitude keep the lower index.
 */
public record Breadcrumbs(boolean normalize, boolean rescale, double lambda) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("breadcrumbs",
            "Model Breadcrumbs: drop the largest gamma and smallest entries of each task vector, then task arithmetic",
            "https://arxiv.org/abs/2312.06795", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(false), Specs.rescale(false), Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY, Specs.GAMMA),
            g -> new Breadcrumbs(g.flag("normalize", false), g.flag("rescale", false), g.number("lambda", 1.0)));

    public Breadcrumbs {
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "breadcrumbs", (c, i, m, tv) -> Sparsify.outliers(c, i, m, tv, i.params().get(m).number("density", 1.0), i.params().get(m).number("gamma", 0.01), rescale), false, normalize, lambda);
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return TaskVectorPasses.program(in, "breadcrumbs", new TaskVectorPasses.Outliers(rescale), false, normalize, lambda);
    }
}
