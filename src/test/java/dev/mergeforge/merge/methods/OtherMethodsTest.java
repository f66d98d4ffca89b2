package dev.mergeforge.merge.methods;

import dev.mergeforge.errors.ConfigException;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.mergeforge.merge.methods.Harness.*;
import static org.junit.jupiter.api.Assertions.*;

/** linear, slerp, nuslerp, multislerp, karcher, model_stock, nearswap, sce and passthrough vs {@link Ref}. */
class OtherMethodsTest {
    static final long[][] SHAPES = {{6, 7}, {16}, {2, 3, 4}, {1, 9}, {5, 1}};

    static float[][] models(SplittableRandom r, int m, int n, float[] base, double zeros) {
        float[][] x = new float[m][];
        for (int j = 0; j < m; j++) {
            float[] dl = grid(r, n, zeros);
            x[j] = new float[n];
            for (int i = 0; i < n; i++) x[j][i] = (base == null ? 0 : base[i]) + dl[i];
        }
        return x;
    }

    static double[][] d2(float[][] x) { double[][] o = new double[x.length][]; for (int j = 0; j < x.length; j++) o[j] = d(x[j]); return o; }

    @Test
    void linear() {
        double[] w = {0.5, 1.5, -0.25};
        for (long[] dims : SHAPES) for (boolean norm : new boolean[] {true, false}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims));
            float[][] ms = models(r, 3, numel(dims), null, 0.2);
            Result res = run(Linear.SPEC, Map.of("normalize", norm), dims, null, ms, each(3, j -> Map.of("weight", w[j])), -1, 0);
            assertClose(Ref.linear(d2(ms), w, norm), res.out(), "linear " + Arrays.toString(dims));
        }
    }

    @Test
    void slerpIncludingTheColinearFallback() {
        for (long[] dims : SHAPES) for (double t : new double[] {0.0, 0.3, 0.75, 1.0}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims));
            int n = numel(dims);
            float[] base = grid(r, n, 0.1);
            float[][] other = {grid(r, n, 0.1)};
            assertClose(Ref.slerp(d(base), d(other[0]), t),
                    run(Slerp.SPEC, Map.of("t", t), dims, base, other, List.of(Map.of()), -1, 0).out(), "slerp t=" + t);
            // base listed as models[0]; the other is colinear (2x the base): lerp
            float[][] listed = {base, new float[n]};
            for (int i = 0; i < n; i++) listed[1][i] = 2 * base[i];
            assertClose(Ref.slerp(d(base), d(listed[1]), t),
                    run(Slerp.SPEC, Map.of("t", t), dims, base, listed, List.of(Map.of(), Map.of()), 0, 0).out(), "slerp colinear");
        }
    }

    @Test
    void nuslerpFlattenRowsColumnsWithAndWithoutBase() {
        for (long[] dims : SHAPES) for (boolean flatten : new boolean[] {true, false}) for (boolean rowWise : new boolean[] {false, true})
            for (boolean withBase : new boolean[] {false, true}) {
                SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims) + (flatten ? 1 : 0));
                int n = numel(dims);
                float[] base = withBase ? grid(r, n, 0.1) : null;
                float[][] ms = models(r, 2, n, base, 0.2);
                double w0 = 0.25, w1 = 0.75;
                Result res = run(NuSlerp.SPEC, Map.of("nuslerp_flatten", flatten, "nuslerp_row_wise", rowWise), dims, base, ms,
                        List.of(Map.of("weight", w0), Map.of("weight", w1)), -1, 0);
                assertClose(Ref.nuslerp(base == null ? null : d(base), d(ms[0]), d(ms[1]), w0, w1, dims, rowWise, flatten), res.out(),
                        "nuslerp " + Arrays.toString(dims) + " flatten " + flatten + " rowWise " + rowWise + " base " + withBase);
            }
        // colinear rows fall back to lerp; weights summing to ~0 give t = 0.5
        float[][] col = {{1, 2, 3, 4}, {2, 4, 6, 8}};
        assertClose(Ref.nuslerp(null, d(col[0]), d(col[1]), 1, -1, new long[] {4}, false, true),
                run(NuSlerp.SPEC, Map.of(), new long[] {4}, null, col, List.of(Map.of("weight", 1.0), Map.of("weight", -1.0)), -1, 0).out(), "nuslerp colinear");
    }

    @Test
    void multislerp() {
        double[] w = {0.5, 0.3, 0.2, 1.0};
        for (long[] dims : SHAPES) for (boolean withBase : new boolean[] {false, true}) for (int m : new int[] {1, 2, 4}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims) + m);
            int n = numel(dims);
            float[] base = withBase ? grid(r, n, 0.1) : null;
            float[][] ms = models(r, m, n, base, 0.2);
            for (boolean nw : new boolean[] {true, false}) {
                Result res = run(MultiSlerp.SPEC, Map.of("normalize_weights", nw), dims, base, ms, each(m, j -> Map.of("weight", w[j])), -1, 0);
                assertClose(Ref.multislerp(base == null ? null : d(base), d2(ms), Arrays.copyOf(w, m), nw, 1e-8), res.out(),
                        "multislerp " + Arrays.toString(dims) + " m " + m + " base " + withBase);
            }
        }
        // antipodal pair with equal weights: lerp fallback; three such models: an error naming the tensor
        float[][] anti = {{1, -2, 3}, {-1, 2, -3}};
        assertClose(Ref.multislerp(null, d2(anti), new double[] {1, 1}, true, 1e-8),
                run(MultiSlerp.SPEC, Map.of(), new long[] {3}, null, anti, each(2, j -> Map.of("weight", 1.0)), -1, 0).out(), "multislerp antipodal");
        float[][] anti3 = {{1, -2, 3}, {-1, 2, -3}, {0, 0, 0}};
        ConfigException e = assertThrows(ConfigException.class, () -> run(MultiSlerp.SPEC, Map.of(), new long[] {3}, null, anti3,
                each(3, j -> Map.of("weight", 1.0)), -1, 0));
        assertTrue(e.getMessage().contains(TENSOR));
    }

    @Test
    void karcherWithAndWithoutAnUnlistedBase() {
        for (long[] dims : SHAPES) for (int m : new int[] {2, 3}) for (boolean base : new boolean[] {false, true}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims) + m);
            int n = numel(dims);
            float[] b = base ? grid(r, n, 0.1) : null;
            float[][] ms = models(r, m, n, b, 0.2);
            Result res = run(Karcher.SPEC, Map.of(), dims, b, ms, each(m, j -> Map.of()), -1, 0);
            double[][] xs = d2(ms);
            if (base) { xs = Arrays.copyOf(xs, m + 1); xs[m] = d(b); } // mergekit appends the unlisted base
            assertClose(Ref.karcher(xs, 10, 1e-5), res.out(), "karcher " + Arrays.toString(dims) + " m " + m + " base " + base);
        }
        // a zero tensor takes no part in the direction but counts in the mean norm
        float[][] z = {{0, 0, 0, 0}, {1, 2, 2, 0}, {2, -1, 0, 2}};
        assertClose(Ref.karcher(d2(z), 5, 1e-5), run(Karcher.SPEC, Map.of("max_iter", 5.0), new long[] {4}, null, z, each(3, j -> Map.of()), -1, 0).out(), "karcher zero");
    }

    @Test
    void modelStockPerTensorAndFilterWise() {
        for (long[] dims : SHAPES) for (int m : new int[] {2, 3}) for (boolean fw : new boolean[] {false, true}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims) + m);
            int n = numel(dims);
            float[] base = grid(r, n, 0.1);
            float[][] ms = models(r, m, n, base, 0.2);
            Result res = run(ModelStock.SPEC, Map.of("filter_wise", fw), dims, base, ms, each(m, j -> Map.of()), -1, 0);
            assertClose(Ref.modelStock(d(base), d2(ms), dims, fw), res.out(), "model_stock " + Arrays.toString(dims) + " m " + m + " fw " + fw);
        }
    }

    @Test
    void nearswap() {
        for (long[] dims : SHAPES) for (double t : new double[] {0.0001, 0.3, 1.0}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims));
            int n = numel(dims);
            float[] base = grid(r, n, 0.1);
            float[][] ms = models(r, 1, n, base, 0.3); // equal entries exercise the 1e-6 clamp
            assertClose(Ref.nearswap(d(base), d(ms[0]), t),
                    run(Nearswap.SPEC, Map.of("t", t), dims, base, ms, List.of(Map.of()), -1, 0).out(), "nearswap t=" + t);
        }
    }

    @Test
    void sceWithAndWithoutVarianceSelection() {
        for (long[] dims : SHAPES) for (int m : new int[] {2, 4}) for (double k : new double[] {1.0, 0.5, 0.1, 0.0}) {
            SplittableRandom r = new SplittableRandom(Arrays.hashCode(dims) + m);
            int n = numel(dims);
            float[] base = grid(r, n, 0.1);
            float[][] ms = models(r, m, n, base, 0.3);
            Result res = run(Sce.SPEC, Map.of("select_topk", k), dims, base, ms, each(m, j -> Map.of()), -1, 0);
            assertClose(Ref.sce(d(base), d2(ms), k), res.out(), "sce " + Arrays.toString(dims) + " m " + m + " topk " + k);
        }
        // tiny task vectors: weights fall back to 1/N
        float[] base = {1, 2, 3, 4};
        float[][] tiny = {{1.0001f, 2, 3, 4}, {1, 2, 2.9999f, 4}};
        assertClose(Ref.sce(d(base), d2(tiny), 1.0), run(Sce.SPEC, Map.of(), new long[] {4}, base, tiny, each(2, j -> Map.of()), -1, 0).out(), "sce tiny");
    }

    @Test
    void slerpRefusesTOutsideTheUnitInterval() {
        var t = Slerp.SPEC.global().getFirst();
        assertEquals("t", t.name());
        assertNull(t.check(1.0));
        assertEquals("must be <= 1.0, got 1.2", t.check(1.2));
        assertEquals("must be >= 0.0, got -0.1", t.check(-0.1));
    }

    @Test
    void sceSelectsTheFloat32ProductCountLikeTorch() {
        // 100 positions of distinct variance at select_topk 0.29: torch's int(100 * 0.29) in float32 is 29,
        // the double product 28.999999999999996 would give 28
        int n = 100;
        float[] base = new float[n], a = new float[n], b = new float[n];
        for (int i = 0; i < n; i++) { a[i] = (i + 1) / 64f; b[i] = (i + 1) / 32f; }
        Result res = run(Sce.SPEC, Map.of("select_topk", 0.29), new long[] {n}, base, new float[][] {a, b}, each(2, j -> Map.of()), -1, 0);
        int kept = 0;
        for (float x : res.out()) if (x != 0f) kept++;
        assertEquals(29, kept);
        assertEquals(28, (int) (100 * 0.29), "the double product would keep 28");
    }

    @Test
    void passthroughCopiesOrScales() {
        SplittableRandom r = new SplittableRandom(1);
        float[][] one = {grid(r, 12, 0.1)};
        Result copy = run(Passthrough.SPEC, Map.of(), new long[] {3, 4}, null, one, List.of(Map.of()), -1, 0);
        assertArrayEquals(one[0], copy.out());
        Result scaled = run(Passthrough.SPEC, Map.of(), new long[] {3, 4}, null, one, List.of(Map.of("scale", 0.5)), -1, 0);
        double[] exp = new double[12];
        for (int i = 0; i < 12; i++) exp[i] = 0.5 * one[0][i];
        assertClose(exp, scaled.out(), "passthrough scale");
    }

    @Test
    void methodsThatNeedABaseSayHowToFixIt() {
        float[][] ms = {{1, 2}, {3, 4}};
        for (var spec : List.of(TaskArithmetic.SPEC, Ties.SPEC, Sce.SPEC, ModelStock.SPEC)) {
            Map<String, Object> p = new HashMap<>();
            if (spec.perModel().stream().anyMatch(s -> s.name().equals("weight"))) p.put("weight", 1.0);
            ConfigException e = assertThrows(ConfigException.class, () -> run(spec, Map.of(), new long[] {2}, null, ms, List.of(p, p), -1, 0));
            assertTrue(e.getMessage().contains("base_model"), spec.name());
        }
    }
}
