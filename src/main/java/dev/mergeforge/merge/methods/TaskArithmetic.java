package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Task arithmetic (Ilharco et al. 2023, arXiv 2212.04089): θ₀ + λ·Σ w_i τ_i, optionally divided by
 * Σ w_i. Pinned to mergekit's {@code GeneralizedTaskArithmeticMerge} with no sparsification and no
 * consensus: the base entry of {@code models} is skipped; {@code density} and {@code rescale} are
 * accepted and have no effect, as in mergekit.
 */
public record TaskArithmetic(boolean normalize, double lambda) implements MergeMethod {

    public static final MethodSpec SPEC = new MethodSpec("task_arithmetic",
            "base plus the weighted sum of task vectors: theta_0 + lambda * sum(w_i * tau_i)",
            "https://arxiv.org/abs/2212.04089", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(false), Specs.rescale(false), Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY),
            g -> new TaskArithmetic(g.flag("normalize", false), g.number("lambda", 1.0)));

    public TaskArithmetic {
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "task_arithmetic", TaskVectors.NONE, false, normalize, lambda);
    }
}
