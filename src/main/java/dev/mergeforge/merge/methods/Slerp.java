package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
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
public record Slerp(double t) implements MergeMethod {
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
}
