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
 * RAM+ tensor-local (arXiv 2601.13572), pinned to mergekit's {@code ram.py} ({@code ramplus_tl},
 * added after 0.1.4, commit 57b95c5): RAM whose unique values are rescaled per model. Over the
 * tensor, model i has S_i positions it shares with another model and U_i it changed alone;
 * ρ_i = S_i / max(U_i, ε), λ_i = 1 + r·clamp(ρ_i, 0, α); out = θ₀ + Σ_i τ_i·[contributes]·(λ_i if
 * c = 1, 1/c if c &gt; 1). All float32 as mergekit (r, α, ε rounded to float32).
 * Passes over chunks: the counting pass, then the combine ({@link RamPass#program}).
 */
public record RamPlusTl(double r, double alpha, double epsilon) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("ramplus_tl",
            "RAM with each model's unique values scaled up by how much it overlaps the others",
            "https://arxiv.org/abs/2601.13572", MethodSpec.BaseUse.REQUIRED, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.number("r", 0.1, "strength of the rescale: lambda = 1 + r * clamp(shared/unique, 0, alpha)"),
                    ParamSpec.number("alpha", 0.2, "upper clamp of the shared/unique ratio"),
                    ParamSpec.number("epsilon", 1e-5, 0, Double.NaN, false, "a model changes a value when |task vector| > epsilon")),
            List.of(),
            g -> new RamPlusTl(g.number("r", 0.1), g.number("alpha", 0.2), g.number("epsilon", 1e-5)));

    public RamPlusTl {
        if (!Double.isFinite(r)) throw new IllegalArgumentException("r must be finite, got " + r);
        if (!Double.isFinite(alpha)) throw new IllegalArgumentException("alpha must be finite, got " + alpha);
        if (!(epsilon >= 0) || Double.isInfinite(epsilon)) throw new IllegalArgumentException("epsilon must be finite and >= 0, got " + epsilon);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        RamPass.merge(ctx, in, out, "ramplus_tl", (float) epsilon, new float[]{(float) r, (float) alpha});
    }

    @Override
    public ChunkProgram program(TensorSetup in) {
        return RamPass.program(in, "ramplus_tl", (float) epsilon, new float[]{(float) r, (float) alpha});
    }
}
