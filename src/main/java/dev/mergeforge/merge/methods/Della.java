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
 * DELLA-Merging (Deep et al. 2024, arXiv 2406.11617) as mergekit implements it
 * ({@code sparsify.della_magprune} + TIES consensus, normalize and rescale default true): in each row
 * the entry of magnitude rank r (0 = largest) of len is kept with probability
 * (d+ε) − 2ε·r/(len−1), the kept vector is rescaled to its original L1 norm (mergekit&#39;s rule, not
 * the paper&#39;s 1/p per entry), then W_i = w_i·τ̂_i, sign election, disjoint mean, λ, + θ₀.
 * Differences: the Bernoulli draws come from Philox keyed by seed, tensor and model (mergekit uses
 * torch&#39;s global RNG, so no two runs of it agree); ties in magnitude rank by lower index; a row of one
 * element uses p = d (mergekit computes 0/0); ranks are computed in float32 whatever the dtype.
 */
public record Della(boolean normalize, boolean rescale, double lambda) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("della",
            "DELLA: magnitude-ranked random drop per row, L1 rescale, TIES sign election",
            "https://arxiv.org/abs/2406.11617", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(true), Specs.rescale(true), Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY, Specs.EPSILON),
            g -> new Della(g.flag("normalize", true), g.flag("rescale", true), g.number("lambda", 1.0)));

    public Della {
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "della", (c, i, m, tv) -> Sparsify.della(c, i, m, tv, i.params().get(m).number("density", 1.0), i.params().get(m).number("epsilon", 0.15), rescale), true, normalize, lambda);
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return TaskVectorPasses.program(in, "della", new TaskVectorPasses.Della(rescale), true, normalize, lambda);
    }
}
