package dev.mergeforge.backend;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The reference loop of {@link ChunkOps#sphere} on host memory (the Java backend): multislerp's steps
 * of {@link SphereSteps} element by element, each float32 op as the separate chunk op computes it.
 */
public final class SphereLoops {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private SphereLoops() {}

    /**
     * {@link ChunkOps#sphere}'s arguments, checked the same on every backend: one tile per scalar, every
     * tile of mean's size, a tangent tile from {@link SphereSteps.Level#TANGENTS} on (it may be xs[0]),
     * and mean aliasing no other tile.
     */
    public static void check(Tile base, List<Tile> xs, SphereSteps s, Tile mean, Tile tangent) {
        if (xs.size() != s.inputs()) throw new IllegalArgumentException("sphere: " + xs.size() + " inputs for " + s.inputs() + " mean weights");
        for (Tile t : xs) same(t, mean);
        if (base != null) same(base, mean);
        boolean tangents = s.level().compareTo(SphereSteps.Level.TANGENTS) >= 0;
        if (tangents && tangent == null) throw new IllegalArgumentException("sphere: " + s.level() + " writes a tangent tile; none given");
        if (tangent != null) {
            same(tangent, mean);
            if (tangent == base || xs.indexOf(tangent) > 0) throw new IllegalArgumentException("sphere: the tangent tile may be the first input only");
        }
        if (mean == base || mean == tangent || xs.contains(mean)) throw new IllegalArgumentException("sphere: the mean tile must not alias an input");
    }

    private static void same(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    /** The steps on elements [lo, hi): xs left as the last step left them, then tangent, then mean. */
    public static void run(Tile base, List<Tile> xs, SphereSteps s, Tile mean, Tile tangent, long lo, long hi) {
        int k = xs.size();
        MemorySegment[] in = xs.stream().map(Tile::data).toArray(MemorySegment[]::new);
        MemorySegment b = base == null ? null : base.data(), m = mean.data(), tg = tangent == null ? null : tangent.data();
        int level = s.level().ordinal();
        float[] mw = s.meanWeights(), us = s.unitScales(), d = s.dots(), w = s.weights();
        float[] x = new float[k];
        for (long i = lo; i < hi; i++) {
            // x_j = θ_j − θ₀
            for (int j = 0; j < k; j++) x[j] = b == null ? in[j].getAtIndex(F, i) : in[j].getAtIndex(F, i) - b.getAtIndex(F, i);
            // mean = Σ w'_j x_j, left to right
            float mi = mw[0] * x[0];
            for (int j = 1; j < k; j++) {
                float p = mw[j] * x[j];
                mi = mi + p;
            }
            float t = 0f;
            if (level >= SphereSteps.Level.UNITS.ordinal()) {
                // m = mean/‖mean‖; u_j = x_j/(‖x_j‖+eps)
                mi = s.meanScale() * mi;
                for (int j = 0; j < k; j++) x[j] = us[j] * x[j];
            }
            if (level >= SphereSteps.Level.TANGENTS.ordinal()) {
                // t_j = u_j − (u_j·m) m; T = Σ w_j t_j, left to right
                for (int j = 0; j < k; j++) {
                    float p = -d[j] * mi;
                    x[j] = (1f * x[j]) + p;
                }
                t = w[0] * x[0];
                for (int j = 1; j < k; j++) {
                    float p = w[j] * x[j];
                    t = t + p;
                }
            }
            for (int j = 0; j < k; j++) in[j].setAtIndex(F, i, x[j]);
            if (tg != null && level >= SphereSteps.Level.TANGENTS.ordinal()) tg.setAtIndex(F, i, t);
            if (level == SphereSteps.Level.RESULT.ordinal()) {
                // r = (m cos‖T‖ + T sin‖T‖/‖T‖) · Σ w_j ‖x_j‖ (+ θ₀)
                float r = s.cos() * mi;
                float p = s.sinOver() * t;
                r = (1f * r) + p;
                r = s.norm() * r;
                if (b != null) r = b.getAtIndex(F, i) + r;
                mi = r;
            }
            m.setAtIndex(F, i, mi);
        }
    }
}
