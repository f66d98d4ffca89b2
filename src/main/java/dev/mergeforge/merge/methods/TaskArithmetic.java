package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Combination;
import dev.mergeforge.merge.CombinationMethod;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * Task arithmetic (Ilharco et al. 2023, arXiv 2212.04089): θ₀ + λ·Σ w_i τ_i, optionally divided by
 * Σ w_i. Pinned to mergekit's {@code GeneralizedTaskArithmeticMerge} with no sparsification and no
 * consensus: the base entry of {@code models} is skipped; {@code density} and {@code rescale} are
 * accepted and have no effect, as in mergekit.
 */
public record TaskArithmetic(boolean normalize, double lambda) implements CombinationMethod, ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("task_arithmetic",
            "base plus the weighted sum of task vectors: theta_0 + lambda * sum(w_i * tau_i)",
            "https://arxiv.org/abs/2212.04089", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(Specs.INT8_MASK, Specs.normalize(false), Specs.rescale(false), Specs.LAMBDA),
            List.of(Specs.WEIGHT, Specs.DENSITY),
            g -> new TaskArithmetic(g.flag("normalize", false), g.number("lambda", 1.0)));

    public TaskArithmetic {
        if (!Double.isFinite(lambda)) throw new IllegalArgumentException("lambda must be finite, got " + lambda);
    }

    /** θ₀ + λ·(Σ w_i τ_i) (/ Σ w_i, |Σw| &lt; 1e-8 → 1), as {@link TaskVectors#merge} computes it. */
    @Override
    public Program program(String tensor, List<Params> params, int baseIndex, boolean hasBase) {
        int[] idx = Weights.allBut(params.size(), baseIndex);
        if (!hasBase || idx.length == 0) return null;
        float[] w = Weights.of(params, idx, "weight");
        List<Float> scales = new ArrayList<>();
        if (normalize) scales.add(TaskVectors.normalizer(w));
        if (lambda != 1) scales.add((float) lambda);
        float[] s = new float[scales.size()];
        for (int i = 0; i < s.length; i++) s[i] = scales.get(i);
        return new Program(idx, new Combination(w, true, s));
    }

    /** No base (an error naming the fix) or no task vectors (the base itself). */
    @Override
    public void mergeOther(MergeContext ctx, MergeInputs in, Tile out) {
        TaskVectors.merge(ctx, in, out, "task_arithmetic", TaskVectors.NONE, false, normalize, lambda);
    }

    /** The combination as one combine pass, for backends that do not fuse it (the merger asks only then). */
    @Override
    public ChunkProgram program(TensorSetup in) {
        Program p = program(in.tensor(), in.params(), in.baseIndex(), in.hasBase());
        return p == null ? TaskVectorPasses.program(in, "task_arithmetic", new TaskVectorPasses.None(), false, normalize, lambda) : CombinationPasses.program(p);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) { CombinationMethod.super.merge(ctx, in, out); }
}
