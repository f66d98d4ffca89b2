package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Fisher-weighted averaging (Matena &amp; Raffel 2022, "Merging Models with Fisher-Weighted
 * Averaging", arXiv 2111.09832), docs/data-informed.md "What is computed": per element
 * θ* = Σ cᵢwᵢ(Fᵢ+ε)θᵢ / Σ cᵢwᵢ(Fᵢ+ε), Fᵢ the diagonal Fisher of model i (its stats file, same
 * name and shape as the tensor). With normalize, cᵢ = (1/‖Fᵢ‖₂)/Σⱼ(1/‖Fⱼ‖₂) from the model-wide
 * norms in each file's metadata key {@code norm} (the planner passes them as the per-model value
 * {@link MethodSpec#FISHER_NORM_PARAM}), else cᵢ = 1. The sums are taken in float64 per element
 * and rounded once. The base model, when given, is not merged (it is there for AIM).
 *
 * <p>As passes over chunks ({@link ChunkedMethod}): no reduction, one combine pass whose chunks
 * hold the models' values and their Fisher values in the same window ({@link ChunkProgram#elementStats}),
 * so memory is 2N + 1 float32 chunks whatever the tensor's size. The per-element sums are host
 * code ({@link ChunkOps#onHost}) on every backend: the float64 sums have no chunk op, and on a
 * device backend the chunks go through host memory for them (docs/data-informed.md, "Memory").
 */
public record Fisher(boolean normalize, double epsilon) implements ChunkedMethod {
    private static final Parallel PAR = new Parallel(0);

    public static final MethodSpec SPEC = new MethodSpec("fisher",
            "Fisher-weighted average: sum c_i w_i (F_i + eps) theta_i / sum c_i w_i (F_i + eps), F_i from each model's Fisher file",
            "https://arxiv.org/abs/2111.09832", MethodSpec.BaseUse.OPTIONAL, 1, Integer.MAX_VALUE,
            List.of(ParamSpec.flag("normalize", true, "scale each model's Fisher by 1/its model-wide L2 norm (metadata 'norm')"),
                    ParamSpec.number("epsilon", 1e-6, 0, Double.NaN, false, "added to every Fisher value")),
            List.of(ParamSpec.number("weight", 1.0, 0, Double.NaN, false, "weight of this model, >= 0")),
            g -> new Fisher(g.flag("normalize", true), g.number("epsilon", 1e-6)), MethodSpec.Stats.FISHER);

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        if (!in.hasStats()) throw new CheckpointException(noFisher(in.tensor()));
        double[] k = coefficients(in.params());
        // the loop reads and writes tile memory itself, not through the backend's ops
        ctx.hostAccess(in.models(), in.stats(), List.of(out));
        weigh(k, (float) epsilon, in.models(), in.stats(), out);
    }

    /** One combine pass over chunks of the models and their Fisher values (same windows). */
    @Override
    public ChunkProgram program(TensorSetup in) {
        if (in.stats().isEmpty()) throw new CheckpointException(noFisher(in.tensor()));
        double[] k = coefficients(in.params());
        float eps = (float) epsilon;
        return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> {
            List<Tile> reads = new java.util.ArrayList<>(c.models());
            reads.addAll(c.stats());
            ops.onHost(reads, List.of(out), () -> weigh(k, eps, c.models(), c.stats(), out));
        }, true, 0, 0);
    }

    private static String noFisher(String tensor) {
        return "fisher: tensor '" + tensor + "' has no Fisher values; every merged tensor needs one in each model's stats file";
    }

    /** out = Σ a_i θ_i / Σ a_i per element, a_i = k_i·(F_i + ε), in float64, over tiles (whole tensors or chunks) of one size. */
    private static void weigh(double[] k, float eps, List<Tile> th, List<Tile> f, Tile out) {
        int n = th.size();
        PAR.forRange(out.size(), (lo, hi) -> {
            for (long e = lo; e < hi; e++) {
                double num = 0, den = 0;
                for (int i = 0; i < n; i++) {
                    // a_i = c_i·w_i·(F_i + ε)
                    double a = k[i] * ((double) f.get(i).get(e) + eps);
                    num += a * th.get(i).get(e);
                    den += a;
                }
                // θ* = Σ a_i θ_i / Σ a_i
                out.set(e, (float) (num / den));
            }
        });
    }

    /** c_i·w_i per model. */
    double[] coefficients(List<Params> params) {
        int n = params.size();
        double[] k = new double[n];
        double invSum = 0;
        for (int i = 0; i < n; i++) {
            k[i] = params.get(i).number("weight", 1.0);
            if (normalize) invSum += 1.0 / params.get(i).number(MethodSpec.FISHER_NORM_PARAM);
        }
        if (normalize) {
            // c_i = (1/‖F_i‖) / Σ_j (1/‖F_j‖)
            for (int i = 0; i < n; i++) k[i] *= (1.0 / params.get(i).number(MethodSpec.FISHER_NORM_PARAM)) / invSum;
        }
        return k;
    }
}
