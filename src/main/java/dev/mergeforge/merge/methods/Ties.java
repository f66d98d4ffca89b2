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
 * TIES-Merging (Yadav et al. 2023, arXiv 2306.01708): trim each τ_i to its ⌊d_i·n⌋ largest
 * magnitudes, W_i = w_i·τ̂_i, elect s = sign(Σ W_i) (0 → +), keep W_i where sign(W_i) = s, divide by
 * the kept weights (normalize, default true), scale by λ and add θ₀. Pinned to mergekit
 * ({@code generalized_task_arithmetic.py} with {@code sparsify.magnitude} and {@code get_mask(sum)}).
 * Differences: equal magnitudes at the threshold keep the lower flat index (torch.argsort leaves the
 * order unspecified); ⌊d·n⌋ = 0 drops that model for that tensor with a log note where mergekit
 * stops on an assert.
 */
public record Ties(boolean normalize, boolean rescale, double lambda) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("ties",
            "TIES: trim each task vector to its density, elect signs, disjoint mean",
            "https://arxiv.org/abs/2306.01708", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(true), Specs.rescale(false), Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY),
            g -> new Ties(g.flag("normalize", true), g.flag("rescale", false), g.number("lambda", 1.0)));

    public Ties {
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "ties", (c, i, m, tv) -> Sparsify.magnitude(c, i, m, tv, i.params().get(m).number("density", 1.0), rescale), true, normalize, lambda);
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return TaskVectorPasses.program(in, "ties", new TaskVectorPasses.Magnitude(rescale), true, normalize, lambda);
    }
}
