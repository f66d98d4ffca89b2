package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;
import java.util.Objects;

/**
 * DARE (Yu et al. 2024, arXiv 2311.03099; mergekit's {@code dare_linear}): each τ_i keeps every
 * entry with probability d_i (Philox, keyed by seed, tensor and model), rescaled per
 * {@code rescale}; then θ₀ + λ·Σ w_i τ̃_i (normalize default false).
 * Differences: mergekit draws from torch's global RNG (runs never repeat), we draw reproducibly;
 * {@code rescale} also takes {@code density} (divide each kept entry by d, the DARE paper's rule)
 * besides mergekit's true (restore ‖τ‖₁, default) and false.
 */
public record DareLinear(boolean normalize, Backend.Rescale rescale, double lambda) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("dare_linear",
            "DARE random drop and rescale of each task vector, then their weighted sum",
            "https://arxiv.org/abs/2311.03099", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(false), DareRescale.SPEC, Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY),
            g -> new DareLinear(g.flag("normalize", false), DareRescale.parse(g), g.number("lambda", 1.0)));

    public DareLinear {
        Objects.requireNonNull(rescale, "rescale");
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "dare_linear",
                (c, i, m, tv) -> Sparsify.random(c, i, m, tv, i.params().get(m).number("density", 1.0), rescale),
                false, normalize, lambda);
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return TaskVectorPasses.program(in, "dare_linear", new TaskVectorPasses.Random(rescale), false, normalize, lambda);
    }
}
