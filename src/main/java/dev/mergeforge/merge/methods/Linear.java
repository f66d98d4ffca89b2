package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Combination;
import dev.mergeforge.merge.CombinationMethod;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Linear merge / model soups (Wortsman et al. 2022, arXiv 2203.05482): a weighted average of the
 * models' tensors. Follows mergekit's {@code linear} ({@code merge_methods/linear.py}): every listed
 * model (the base too, if listed) takes part with its weight; with normalize the sum is divided by
 * Σw. Difference: when Σw = 0 mergekit divides by zero (inf/NaN tensors); we keep the plain sum.
 * The division is a multiplication by the float32 reciprocal (within 1 ulp of mergekit's divide).
 */
public record Linear(boolean normalize) implements CombinationMethod, ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("linear",
            "weighted average of the models: sum(w_i * theta_i) / sum(w_i)",
            "https://arxiv.org/abs/2203.05482", MethodSpec.BaseUse.UNUSED, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.flag("normalize", true, "divide by the sum of the weights")),
            List.of(ParamSpec.number("weight", null, "weight of this model")),
            g -> new Linear(g.flag("normalize", true)));

    @Override
    public Program program(String tensor, List<Params> params, int baseIndex, boolean hasBase) {
        int[] all = Weights.allBut(params.size(), -1);
        float[] w = Weights.of(params, all, "weight");
        // out = sum_i w_i * theta_i, then / sum_i w_i   (a zero sum leaves the sum as is; mergekit would produce inf/NaN)
        float sum = Weights.sum(w);
        float[] scales = normalize && sum != 0f ? new float[] {1f / sum} : new float[0];
        return new Program(all, new Combination(w, false, scales));
    }

    @Override
    public void mergeOther(MergeContext ctx, MergeInputs in, Tile out) {
        throw new IllegalStateException("linear always has a program");
    }

    /** The combination as one combine pass, for backends that do not fuse it (the merger asks only then). */
    @Override
    public ChunkProgram program(TensorSetup in) {
        Program p = program(in.tensor(), in.params(), in.baseIndex(), in.hasBase());
        return p == null ? null : CombinationPasses.program(p);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) { CombinationMethod.super.merge(ctx, in, out); }
}
