package dev.mergeforge.backend.java;

import dev.mergeforge.backend.Parallel;
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
 * SCE's fused spread ({@code ChunkOps.deltaVariance}, docs/methods.md "sce") on the Java reference:
 * a hand-worked case, and bit for bit the separate ops it fuses written here as plain float loops
 * (τ_j = x_j − b; μ = (1/N)·Σ τ_j left to right; var = Σ (τ_j − μ)² left to right).
 */
class DeltaVarianceTest {
    private static Parallel par;
    private static JavaChunkOps ops;

    @BeforeAll static void setUp() { par = new Parallel(3); ops = new JavaChunkOps(par); }

    @AfterAll static void tearDown() { par.shutdown(); }

    @Test
    void handWorkedValues() {
        // x = {3, 5, 10}, base 1: τ = {2, 4, 9}, μ = (1/3)·15 = 5 in float32, var = 9 + 1 + 16 = 26
        Tile a = Tile.ofArray(new float[] {3f, 0f}), b = Tile.ofArray(new float[] {5f, 0f}), c = Tile.ofArray(new float[] {10f, 0f});
        Tile base = Tile.ofArray(new float[] {1f, -2f}), var = Tile.ofArray(new float[2]);
        ops.deltaVariance(base, List.of(a, b, c), var);
        assertArrayEquals(new float[] {2f, 2f}, a.toArray());
        assertArrayEquals(new float[] {4f, 2f}, b.toArray());
        assertArrayEquals(new float[] {9f, 2f}, c.toArray());
        assertEquals(26f, var.get(0));
        // τ all equal: no spread at all
        assertEquals(0f, var.get(1));
        // one model: its own square of (τ − τ) is zero; without a base the inputs are left as they are
        Tile t = Tile.ofArray(new float[] {1.5f}), v = Tile.ofArray(new float[1]);
        ops.deltaVariance(null, List.of(t), v);
        assertEquals(1.5f, t.get(0));
        assertEquals(0f, v.get(0));
    }

    /** The separate ops' bits, one float32 operation at a time. */
    private static float[] reference(float[] base, List<float[]> xs) {
        int n = xs.getFirst().length, k = xs.size();
        float inv = 1f / k;
        float[] var = new float[n];
        for (int i = 0; i < n; i++) {
            float[] tau = new float[k];
            for (int j = 0; j < k; j++) {
                tau[j] = base == null ? xs.get(j)[i] : xs.get(j)[i] - base[i];
                xs.get(j)[i] = tau[j];
            }
            float mean = tau[0];
            for (int j = 1; j < k; j++) mean += tau[j];
            mean = inv * mean;
            float d0 = tau[0] - mean, acc = d0 * d0;
            for (int j = 1; j < k; j++) {
                float d = tau[j] - mean;
                acc += d * d;
            }
            var[i] = acc;
        }
        return var;
    }

    @Test
    void matchesTheSeparateOpsBitForBit() {
        SplittableRandom r = new SplittableRandom(11);
        for (int n : new int[] {1, 7, 1025, 200_003}) {
            for (int k = 1; k <= 4; k++) {
                for (boolean withBase : new boolean[] {true, false}) {
                    float[] base = withBase ? FloatValues.of(r, n) : null;
                    List<float[]> xs = new ArrayList<>();
                    for (int j = 0; j < k; j++) xs.add(FloatValues.of(r, n));
                    List<Tile> tiles = new ArrayList<>();
                    for (float[] x : xs) tiles.add(Tile.ofArray(x.clone()));
                    Tile var = Tile.ofArray(new float[n]);
                    ops.deltaVariance(withBase ? Tile.ofArray(base) : null, tiles, var);
                    float[] want = reference(base, xs);
                    String what = "n=" + n + " k=" + k + " base=" + withBase;
                    assertArrayEquals(bits(want), bits(var.toArray()), what);
                    for (int j = 0; j < k; j++) assertArrayEquals(bits(xs.get(j)), bits(tiles.get(j).toArray()), what + " τ" + j);
                }
            }
        }
    }

    @Test
    void refusesMismatchedSizes() {
        Tile a = Tile.ofArray(new float[3]), v = Tile.ofArray(new float[2]);
        assertThrows(IllegalArgumentException.class, () -> ops.deltaVariance(null, List.of(a), v));
        assertThrows(IllegalArgumentException.class, () -> ops.deltaVariance(null, List.of(), v));
    }

    private static int[] bits(float[] v) {
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
        return b;
    }
}
