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
 * RAM — Reinforced Agent Merging (arXiv 2601.13572), pinned to mergekit's {@code ram.py} (added
 * after 0.1.4, commit 57b95c5). τ_i = θ_i − θ₀; a model contributes at a position where
 * |τ_i| &gt; ε; c = number of contributors. Out = θ₀ + Σ_i τ_i·[contributes]·(1 if c = 1, 1/c if
 * c &gt; 1): a value only one model changed is kept whole, shared changes are averaged over the
 * models that made them. All float32, ε rounded to float32 as torch compares; the sum runs over
 * the models in config order (mergekit's order is its set's iteration order). Passes over chunks:
 * one combine pass ({@link RamPass#program}).
 */
public record Ram(double epsilon) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("ram",
            "keep values only one model changed whole, average values several models changed",
            "https://arxiv.org/abs/2601.13572", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.number("epsilon", 1e-5, 0, Double.NaN, false, "a model changes a value when |task vector| > epsilon")),
            List.of(),
            g -> new Ram(g.number("epsilon", 1e-5)));

    public Ram {
        if (!(epsilon >= 0) || Double.isInfinite(epsilon)) throw new IllegalArgumentException("epsilon must be finite and >= 0, got " + epsilon);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        RamPass.merge(ctx, in, out, "ram", (float) epsilon, null);
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return RamPass.program(in, "ram", (float) epsilon, null);
    }
}
