package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * NuSLERP, mergekit's {@code nuslerp.py}: slerp of exactly two models at t = w₂/(w₁+w₂) (0.5 when
 * |w₁+w₂| &lt; 1e-6); with a base model, of their task vectors, added back to the base. Vectors are
 * the whole tensor ({@code nuslerp_flatten}, default true), else the vectors along the last axis
 * (rows of a matrix) or, with {@code nuslerp_row_wise}, along axis 0 (columns of a matrix — this is
 * what mergekit's code does, although its docs describe the opposite). Per vector:
 * u = v/max(‖v‖, 1e-7), θ = acos(clamp(u₀·u₁, −1, 1)), and out = (sin((1−t)θ)v₀ + sin(tθ)v₁)/sin θ,
 * or the lerp (1−t)v₀ + t v₁ where |sin θ| &lt; 1e-8. The per-vector scalars are computed in double.
 */
public record NuSlerp(boolean rowWise, boolean flatten) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("nuslerp",
            "slerp of two models (or of their task vectors with a base) at t = w2 / (w1 + w2)",
            "https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md", MethodSpec.BaseUse.OPTIONAL, 2, 2,
            List.of(ParamSpec.flag("nuslerp_row_wise", false, "with nuslerp_flatten false: vectors along axis 0 instead of the last axis"),
                    ParamSpec.flag("nuslerp_flatten", true, "slerp each tensor as one flattened vector")),
            List.of(Specs.WEIGHT),
            g -> new NuSlerp(g.flag("nuslerp_row_wise", false), g.flag("nuslerp_flatten", true)));

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Backend b = ctx.backend();
        int[] idx = in.nonBase();
        if (idx.length == 1) { b.scale(in.models().get(idx[0]), 1f, out); return; }
        if (idx.length != 2) {
            throw new dev.mergeforge.errors.ConfigException("nuslerp merges exactly two models besides the base, got " + idx.length
                    + " for tensor " + in.tensor() + "; list two models");
        }
        double w0 = in.params().get(idx[0]).number("weight"), w1 = in.params().get(idx[1]).number("weight");
        // t = w₁ / (w₀ + w₁), 0.5 when the sum is ~0
        double t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        Tile v0 = in.models().get(idx[0]), v1 = in.models().get(idx[1]);
        Tile base = in.base();
        if (base != null) {
            // v_i = θ_i − θ₀
            b.sub(v0, base, v0);
            b.sub(v1, base, v1);
        }
        Lanes lanes = flatten ? Lanes.whole(out.size())
                : Lanes.along(out.shape(), rowWise ? 0 : Math.max(0, out.shape().rank() - 1));
        int count = Math.toIntExact(lanes.count());
        double[] d00 = new double[count], d11 = new double[count], d01 = new double[count];
        b.laneDots(v0, v0, lanes, d00);
        b.laneDots(v1, v1, lanes, d11);
        b.laneDots(v0, v1, lanes, d01);
        float[] c0 = new float[count], c1 = new float[count];
        coefficients(d00, d11, d01, count, t, c0, c1);
        // out = c₀·v₀ + c₁·v₁ per vector
        b.laneScale(v0, c0, lanes, out);
        b.laneScale(v1, c1, lanes, v1);
        b.add(out, v1, out);
        // + θ₀
        if (base != null) b.add(base, out, out);
    }

    /**
     * One reduction pass for the per-vector dots, then the combine; vectors along axis 0
     * ({@code nuslerp_row_wise} without flatten) span every chunk: chunks hold whole rows and each
     * column's dots are carried from chunk to chunk.
     */
    @Override
    public ChunkProgram program(TensorSetup in) {
        int[] idx = in.nonBase();
        if (idx.length == 1) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.model(idx[0]), 1f, out));
        if (idx.length != 2) {
            throw new dev.mergeforge.errors.ConfigException("nuslerp merges exactly two models besides the base, got " + idx.length
                    + " for tensor " + in.tensor() + "; list two models");
        }
        double w0 = in.params().get(idx[0]).number("weight"), w1 = in.params().get(idx[1]).number("weight");
        // t = w₁ / (w₀ + w₁), 0.5 when the sum is ~0
        double t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        boolean hasBase = in.hasBase();
        VectorLanes vl = !flatten && rowWise && in.shape().rank() >= 2 ? VectorLanes.columns(in.shape()) : VectorLanes.of(in.shape(), !flatten);
        VectorLanes.Dots d00 = vl.dots(), d11 = vl.dots(), d01 = vl.dots();
        float[] c0 = new float[vl.count], c1 = new float[vl.count];
        ChunkProgram.Pass dots = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                Tile v0 = vectors(ops, c, idx[0], hasBase), v1 = vectors(ops, c, idx[1], hasBase);
                d00.add(ops, c, v0, v0);
                d11.add(ops, c, v1, v1);
                d01.add(ops, c, v0, v1);
            }

            @Override public void end() {
                coefficients(d00.values(), d11.values(), d01.values(), vl.count, t, c0, c1);
            }
        };
        return new ChunkProgram(vl.align(), 0, List.of(dots), (ops, c, out) -> {
            Tile v0 = vectors(ops, c, idx[0], hasBase), v1 = vectors(ops, c, idx[1], hasBase);
            // out = c₀·v₀ + c₁·v₁ per vector
            vl.scale(ops, c, v0, c0, out);
            vl.scale(ops, c, v1, c1, v1);
            ops.add(out, v1, out);
            // + θ₀
            if (hasBase) ops.add(c.base(), out, out);
        });
    }

    /** v_i = θ_i − θ₀ with a base (in place in the model's chunk), else θ_i. */
    private static Tile vectors(ChunkOps ops, Chunk c, int j, boolean hasBase) {
        Tile v = c.model(j);
        if (hasBase) ops.sub(v, c.base(), v);
        return v;
    }

    /** The slerp coefficients of each vector from its dot products (v₀·v₀, v₁·v₁, v₀·v₁), one rule for the tile and the chunk path. */
    private static void coefficients(double[] d00, double[] d11, double[] d01, int count, double t, float[] c0, float[] c1) {
        for (int v = 0; v < count; v++) {
            // cos θ = (v₀/max(‖v₀‖,1e-7)) · (v₁/max(‖v₁‖,1e-7))
            double n0 = Math.max(Math.sqrt(d00[v]), 1e-7), n1 = Math.max(Math.sqrt(d11[v]), 1e-7);
            double cos = Math.max(-1, Math.min(1, d01[v] / (n0 * n1)));
            double theta = Math.acos(cos), sin = Math.sin(theta);
            if (Math.abs(sin) < 1e-8) {
                c0[v] = (float) (1 - t);
                c1[v] = (float) t;
            } else {
                c0[v] = (float) (Math.sin((1 - t) * theta) / sin);
                c1[v] = (float) (Math.sin(t * theta) / sin);
            }
        }
    }
}
