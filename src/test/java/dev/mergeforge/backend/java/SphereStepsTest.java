package dev.mergeforge.backend.java;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.SphereSteps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Multislerp's fused steps ({@code ChunkOps.sphere}, docs/methods.md "multislerp") on the Java
 * reference: a hand-worked case, and bit for bit the separate chunk ops the chunked multislerp ran
 * before (sub, weightedSum, scale, add, one sweep each), at every level, with and without a base, the
 * tangent in the first input's tile or its own.
 */
class SphereStepsTest {
    private static Parallel par;
    private static JavaChunkOps ops;

    @BeforeAll static void setUp() { par = new Parallel(3); ops = new JavaChunkOps(par); }

    @AfterAll static void tearDown() { par.shutdown(); }

    @Test
    void handWorkedValues() {
        // x = {3, 5} − base 1 = {2, 4}; m = 0.5·2 + 0.25·4 = 2; m = 0.5·2 = 1; u = {2·0.5, 4·0.25} = {1, 1}
        // t_j = u_j − d_j·m = {1 − 0.5, 1 − 2} = {0.5, −1}; T = 2·0.5 + 1·(−1) = 0
        // r = (4·1 + 3·0)·0.5 + base 1 = 3
        Tile a = Tile.ofArray(new float[] {3f}), b = Tile.ofArray(new float[] {5f}), base = Tile.ofArray(new float[] {1f});
        Tile mean = Tile.ofArray(new float[1]), tangent = Tile.ofArray(new float[1]);
        SphereSteps t = SphereSteps.tangents(new float[] {0.5f, 0.25f}, 0.5f, new float[] {0.5f, 0.25f}, new float[] {0.5f, 2f}, new float[] {2f, 1f});
        ops.sphere(base, List.of(a, b), t.result(4f, 3f, 0.5f), mean, tangent);
        assertEquals(0.5f, a.get(0));
        assertEquals(-1f, b.get(0));
        assertEquals(0f, tangent.get(0));
        assertEquals(3f, mean.get(0));
        // the mean alone, without a base: the inputs stay as they are
        Tile c = Tile.ofArray(new float[] {3f}), d = Tile.ofArray(new float[] {5f});
        ops.sphere(null, List.of(c, d), SphereSteps.mean(new float[] {0.5f, 0.25f}), mean, null);
        assertEquals(3f, c.get(0));
        assertEquals(2.75f, mean.get(0));
    }

    @Test
    void matchesTheSeparateOpsBitForBit() {
        SplittableRandom r = new SplittableRandom(5);
        for (int n : new int[] {1, 7, 1025, 200_003}) {
            for (int k = 1; k <= 4; k++) {
                for (boolean withBase : new boolean[] {true, false}) {
                    for (SphereSteps.Level level : SphereSteps.Level.values()) {
                        for (boolean ownTangent : new boolean[] {true, false}) {
                            check(r, n, k, withBase, steps(r, k, level), ownTangent);
                        }
                    }
                }
            }
        }
    }

    private static void check(SplittableRandom r, int n, int k, boolean withBase, SphereSteps s, boolean ownTangent) {
        String what = "n=" + n + " k=" + k + " base=" + withBase + " " + s.level() + (ownTangent ? " own tangent" : "");
        float[] base = withBase ? FloatValues.of(r, n) : null;
        List<float[]> xs = new ArrayList<>();
        for (int j = 0; j < k; j++) xs.add(FloatValues.of(r, n));
        // the fused sweep
        List<Tile> tiles = new ArrayList<>();
        for (float[] x : xs) tiles.add(Tile.ofArray(x.clone()));
        Tile mean = Tile.ofArray(new float[n]);
        Tile tangent = ownTangent ? Tile.ofArray(new float[n]) : tiles.getFirst();
        ops.sphere(withBase ? Tile.ofArray(base.clone()) : null, tiles, s, mean, tangent);
        // the separate ops
        List<Tile> want = new ArrayList<>();
        for (float[] x : xs) want.add(Tile.ofArray(x.clone()));
        Tile wantMean = Tile.ofArray(new float[n]);
        Tile wantTangent = ownTangent ? Tile.ofArray(new float[n]) : want.getFirst();
        separate(withBase ? Tile.ofArray(base.clone()) : null, want, s, wantMean, wantTangent);
        assertArrayEquals(bits(wantMean), bits(mean), what + " mean");
        if (s.level().compareTo(SphereSteps.Level.TANGENTS) >= 0) assertArrayEquals(bits(wantTangent), bits(tangent), what + " tangent");
        for (int j = 0; j < k; j++) assertArrayEquals(bits(want.get(j)), bits(tiles.get(j)), what + " x" + j);
    }

    /** The steps as the separate chunk ops, one sweep each, as MultiSlerp's passes ran them. */
    private static void separate(Tile base, List<Tile> x, SphereSteps s, Tile mean, Tile tangent) {
        if (base != null) for (Tile t : x) ops.sub(t, base, t);
        ops.weightedSum(x, s.meanWeights(), mean);
        if (s.level() == SphereSteps.Level.MEAN) return;
        ops.scale(mean, s.meanScale(), mean);
        for (int j = 0; j < x.size(); j++) ops.scale(x.get(j), s.unitScales()[j], x.get(j));
        if (s.level() == SphereSteps.Level.UNITS) return;
        for (int j = 0; j < x.size(); j++) ops.weightedSum(List.of(x.get(j), mean), new float[] {1f, -s.dots()[j]}, x.get(j));
        ops.weightedSum(x, s.weights(), tangent);
        if (s.level() == SphereSteps.Level.TANGENTS) return;
        ops.scale(mean, s.cos(), mean);
        ops.weightedSum(List.of(mean, tangent), new float[] {1f, s.sinOver()}, mean);
        ops.scale(mean, s.norm(), mean);
        if (base != null) ops.add(base, mean, mean);
    }

    /** Random scalars of the level: weights of both signs, scales over many magnitudes. */
    static SphereSteps steps(SplittableRandom r, int k, SphereSteps.Level level) {
        float[] mw = scalars(r, k), us = scalars(r, k), d = scalars(r, k), w = scalars(r, k);
        float ms = scalars(r, 1)[0];
        return switch (level) {
            case MEAN -> SphereSteps.mean(mw);
            case UNITS -> SphereSteps.units(mw, ms, us);
            case TANGENTS -> SphereSteps.tangents(mw, ms, us, d, w);
            case RESULT -> SphereSteps.tangents(mw, ms, us, d, w).result((float) r.nextDouble(-1, 1), (float) r.nextDouble(0, 1), scalars(r, 1)[0]);
        };
    }

    private static float[] scalars(SplittableRandom r, int k) {
        float[] v = new float[k];
        for (int j = 0; j < k; j++) v[j] = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(-8, 8)));
        return v;
    }

    @Test
    void refusesBadArguments() {
        Tile a = Tile.ofArray(new float[3]), b = Tile.ofArray(new float[3]), m = Tile.ofArray(new float[3]), small = Tile.ofArray(new float[2]);
        SphereSteps one = SphereSteps.mean(new float[] {1f}), two = SphereSteps.mean(new float[] {1f, 1f});
        SphereSteps tangents = SphereSteps.tangents(new float[] {1f}, 1f, new float[] {1f}, new float[] {1f}, new float[] {1f});
        assertThrows(IllegalArgumentException.class, () -> ops.sphere(null, List.of(a), two, m, null));
        assertThrows(IllegalArgumentException.class, () -> ops.sphere(null, List.of(a), one, small, null));
        assertThrows(IllegalArgumentException.class, () -> ops.sphere(null, List.of(a), one, a, null));
        assertThrows(IllegalArgumentException.class, () -> ops.sphere(null, List.of(a), tangents, m, null));
        assertThrows(IllegalArgumentException.class, () -> ops.sphere(null, List.of(a, b), SphereSteps.mean(new float[] {1f, 1f}), m, b));
        assertThrows(IllegalArgumentException.class, () -> SphereSteps.units(new float[] {1f, 1f}, 1f, new float[] {1f}));
        assertThrows(IllegalStateException.class, () -> one.result(1f, 1f, 1f));
    }

    private static int[] bits(Tile t) {
        float[] v = t.toArray();
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
        return b;
    }
}
