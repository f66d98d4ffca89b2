package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.chunk.Chunk;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Spherical linear interpolation (Shoemake 1985) between the base model (t = 0) and the one other
 * model (t = 1), over each whole tensor flattened. Pinned to mergekit's {@code slerp.py}: both
 * vectors are normalised when their norm exceeds 1e-8, the cosine of their angle is the dot of the
 * normalised vectors, |cos| &gt; 0.9995 falls back to lerp, otherwise
 * out = sin((1−t)θ)/sin θ · a + sin(tθ)/sin θ · b with θ = acos(cos). The scalar maths runs in double
 * (mergekit: float32 numpy scalars), the elementwise sum in float32.
 */
public record Slerp(double t) implements ChunkedMethod {
    static final double DOT_THRESHOLD = 0.9995, EPS = 1e-8;

    public static final MethodSpec SPEC = new MethodSpec("slerp",
            "spherical interpolation between the base (t=0) and the other model (t=1)",
            "https://en.wikipedia.org/wiki/Slerp", MethodSpec.BaseUse.REQUIRED, 1, 1,
            List.of(ParamSpec.number("t", null, 0.0, 1.0, false, "interpolation factor in [0, 1]: 0 gives the base model, 1 the other model")),
            List.of(),
            g -> new Slerp(g.number("t")));

    public Slerp {
        if (!Double.isFinite(t)) throw new IllegalArgumentException("t must be finite, got " + t);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Backend b = ctx.backend();
        Tile a = TaskVectors.base(in, "slerp");
        int[] idx = in.nonBase();
        if (idx.length == 0) { b.scale(a, 1f, out); return; }
        Tile v = in.models().get(idx[0]);
        // ‖a‖, ‖b‖ (a vector is only normalised when its norm exceeds eps)
        double na = Math.sqrt(b.sumSquares(a)), nb = Math.sqrt(b.sumSquares(v));
        double ea = na > EPS ? na : 1, eb = nb > EPS ? nb : 1;
        // cos θ = (a/‖a‖)·(b/‖b‖)
        double dot = b.dot(a, v) / (ea * eb);
        if (Math.abs(dot) > DOT_THRESHOLD) {
            // nearly colinear: out = (1−t)a + tb
            b.lerp(a, v, (float) t, out);
            return;
        }
        double theta = Math.acos(dot), sinTheta = Math.sin(theta);
        // out = sin((1−t)θ)/sinθ · a + sin(tθ)/sinθ · b
        float s0 = (float) (Math.sin(theta - theta * t) / sinTheta);
        float s1 = (float) (Math.sin(theta * t) / sinTheta);
        b.weightedSum(List.of(a, v), new float[] {s0, s1}, out);
    }

    /** The same maths as passes: one reduction pass for ‖a‖², ‖b‖² and a·b, then the combine. */
    @Override
    public ChunkProgram program(TensorSetup in) {
        if (!in.hasBase()) throw new ConfigException("slerp needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        int[] idx = in.nonBase();
        if (idx.length == 0) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.base(), 1f, out));
        int j = idx[0];
        BlockSum aa = new BlockSum(), bb = new BlockSum(), ab = new BlockSum();
        float[] s = new float[2];
        boolean[] lerp = new boolean[1];
        ChunkProgram.Pass norms = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                // ‖a‖², ‖b‖², a·b in the canonical order
                ops.sumSquares(c.base(), c.offset(), aa);
                ops.sumSquares(c.model(j), c.offset(), bb);
                ops.dot(c.base(), c.model(j), c.offset(), ab);
            }

            @Override public void end() {
                double na = Math.sqrt(aa.value()), nb = Math.sqrt(bb.value());
                double ea = na > EPS ? na : 1, eb = nb > EPS ? nb : 1;
                // cos θ = (a/‖a‖)·(b/‖b‖)
                double dot = ab.value() / (ea * eb);
                lerp[0] = Math.abs(dot) > DOT_THRESHOLD;
                if (lerp[0]) return;
                double theta = Math.acos(dot), sinTheta = Math.sin(theta);
                s[0] = (float) (Math.sin(theta - theta * t) / sinTheta);
                s[1] = (float) (Math.sin(theta * t) / sinTheta);
            }
        };
        return new ChunkProgram(1, 0, List.of(norms), (ops, c, out) -> {
            // nearly colinear: out = (1−t)a + tb; else out = sin((1−t)θ)/sinθ · a + sin(tθ)/sinθ · b
            if (lerp[0]) ops.lerp(c.base(), c.model(j), (float) t, out);
            else ops.weightedSum(List.of(c.base(), c.model(j)), s, out);
        });
    }
}
