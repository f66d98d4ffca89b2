package dev.mergeforge.backend.java;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.SceOpsReference;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * SCE's fused chunk ops on the Java reference (storedVariance, disjointMean; docs/methods.md "sce")
 * against {@link SceOpsReference}'s plain loops: stored inputs of every float dtype, a piece of the
 * tensor at an offset, with and without a base, one to four models; hand-worked values.
 */
class SceFusedOpsTest {
    private static Parallel par;
    private static JavaChunkOps ops;
    private static final DType[] DTYPES = {DType.BF16, DType.F16, DType.F32, DType.F64};

    @BeforeAll static void setUp() { par = new Parallel(3); ops = new JavaChunkOps(par); }

    @AfterAll static void tearDown() { par.shutdown(); }

    @Test
    void storedVarianceHandWorked() {
        // x = {3, 5, 10}, base 1: τ = {2, 4, 9}, μ = 5, var = 9 + 1 + 16 = 26; element 1: all τ equal, var 0
        try (Arena arena = Arena.ofConfined()) {
            TensorView base = SceOpsReference.stored(arena, "b", DType.BF16, new float[] {7f, 1f, -2f});
            List<TensorView> xs = List.of(SceOpsReference.stored(arena, "x0", DType.BF16, new float[] {0f, 3f, 0f}),
                    SceOpsReference.stored(arena, "x1", DType.F16, new float[] {0f, 5f, 0f}),
                    SceOpsReference.stored(arena, "x2", DType.F32, new float[] {0f, 10f, 0f}));
            Tile var = Tile.ofArray(new float[2]);
            ops.storedVariance(base, xs, 1, scratch(3, 2), var);
            assertArrayEquals(new float[] {26f, 0f}, var.toArray());
        }
    }

    @Test
    void storedVarianceMatchesThePlainLoops() {
        try (Arena arena = Arena.ofShared()) {
            for (int n : new int[] {1, 9, 1025, 70_001}) {
                for (int k = 1; k <= 4; k++) {
                    for (boolean withBase : new boolean[] {true, false}) {
                        int off = n / 3;
                        float[] b = SceOpsReference.representable(DTYPES[k % 4], SceOpsReference.values(n * 7L + k, n + off, true, false));
                        List<float[]> xs = new ArrayList<>();
                        List<TensorView> views = new ArrayList<>();
                        for (int j = 0; j < k; j++) {
                            DType d = DTYPES[(j + k) % 4];
                            float[] x = SceOpsReference.representable(d, SceOpsReference.values(n * 11L + j, n + off, false, j == 0));
                            xs.add(java.util.Arrays.copyOfRange(x, off, off + n));
                            views.add(SceOpsReference.stored(arena, "x" + j, d, x));
                        }
                        TensorView base = withBase ? SceOpsReference.stored(arena, "b", DTYPES[k % 4], b) : null;
                        Tile var = Tile.ofArray(new float[n]);
                        ops.storedVariance(base, views, off, scratch(k, n), var);
                        float[] want = SceOpsReference.variance(withBase ? java.util.Arrays.copyOfRange(b, off, off + n) : null, xs);
                        assertBitsOrNaN(want, var.toArray(), "n=" + n + " k=" + k + " base=" + withBase);
                    }
                }
            }
        }
    }

    @Test
    void disjointMeanHandWorked() {
        // τ = {2, -1, 4}, w = {0.5, 0.25, 0.25}: Σ τ = 5 ≥ 0, kept 0 and 2: (1 + 1) / 0.75, plus base 1
        Tile base = Tile.ofArray(new float[] {1f, -3f}), sign = Tile.ofArray(new float[2]), out = Tile.ofArray(new float[2]);
        List<Tile> taus = List.of(Tile.ofArray(new float[] {2f, 0f}), Tile.ofArray(new float[] {-1f, 0f}), Tile.ofArray(new float[] {4f, 0f}));
        ops.disjointMean(base, taus, new float[] {0.5f, 0.25f, 0.25f}, 1e-6f, sign, out);
        assertEquals(1f + 2f / 0.75f, out.get(0));
        // nothing kept (all zero): 0 / 1e-6, the base itself
        assertEquals(-3f, out.get(1));
    }

    @Test
    void disjointMeanMatchesThePlainLoops() {
        for (int n : new int[] {1, 9, 1025, 70_001}) {
            for (int k = 1; k <= 4; k++) {
                float[] base = SceOpsReference.values(n * 3L + k, n, true, false);
                List<float[]> taus = new ArrayList<>();
                List<Tile> tiles = new ArrayList<>();
                float[] w = new float[k];
                for (int j = 0; j < k; j++) {
                    taus.add(SceOpsReference.values(n * 5L + j, n, j != 0, j == 0));
                    tiles.add(Tile.ofArray(taus.getLast().clone()));
                    w[j] = j == 1 ? 0f : (float) (0.1 + 0.3 * j);
                }
                for (float floor : new float[] {1e-6f, 0.75f}) {
                    Tile out = Tile.ofArray(new float[n]);
                    List<Tile> copies = tiles.stream().map(t -> Tile.ofArray(t.toArray())).toList();
                    ops.disjointMean(Tile.ofArray(base.clone()), copies, w, floor, Tile.ofArray(new float[n]), out);
                    assertBitsOrNaN(SceOpsReference.disjointMean(base, taus, w, floor), out.toArray(), "n=" + n + " k=" + k + " floor=" + floor);
                }
            }
        }
    }

    @Test
    void refusesBadArguments() {
        Tile a = Tile.ofArray(new float[3]), b = Tile.ofArray(new float[3]), o = Tile.ofArray(new float[3]);
        assertThrows(IllegalArgumentException.class, () -> ops.disjointMean(a, List.of(b), new float[2], 1e-6f, a, o));
        assertThrows(IllegalArgumentException.class, () -> ops.disjointMean(a, List.of(b), new float[1], 1e-6f, o, o));
        assertThrows(IllegalArgumentException.class, () -> ops.disjointMean(a, List.of(o), new float[1], 1e-6f, b, o));
        assertThrows(IllegalArgumentException.class, () -> ops.disjointMean(o, List.of(a), new float[1], 1e-6f, b, o));
        try (Arena arena = Arena.ofConfined()) {
            TensorView x = SceOpsReference.stored(arena, "x", DType.F32, new float[4]);
            assertThrows(IllegalArgumentException.class, () -> ops.storedVariance(null, List.of(x), 2, List.of(b), o));
            assertThrows(IllegalArgumentException.class, () -> ops.storedVariance(null, List.of(x), 0, List.of(), o));
            assertThrows(IllegalArgumentException.class, () -> ops.storedVariance(null, List.of(x), 0, List.of(o), o));
        }
    }

    private static List<Tile> scratch(int k, int n) {
        List<Tile> s = new ArrayList<>();
        for (int j = 0; j < k; j++) s.add(Tile.ofArray(new float[n]));
        return s;
    }

    /** Bit for bit, a NaN matching any NaN (the reference does not pin payloads). */
    static void assertBitsOrNaN(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i]) && Float.isNaN(got[i])) continue;
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]),
                    what + ": element " + i + " is " + got[i] + ", expected " + want[i]);
        }
    }
}
