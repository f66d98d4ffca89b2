package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.CanonicalSum;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.List;
import java.util.function.BiConsumer;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.random;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Elementwise ops and reductions: NativeBackend against JavaBackend bit for bit, and both against a
 * reference written here in double that rounds to float32 exactly where the Backend contract says.
 */
class NativeElementwiseTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    /** Runs op on each backend with fresh native copies of the inputs; returns [java, native] outputs. */
    private static float[][] both(Case c, float[][] inputs, BiConsumer<Backend, List<Tile>> op, int outIndex) {
        float[][] res = new float[2][];
        Backend[] bs = {java(), nat(c)};
        for (int k = 0; k < 2; k++) {
            try (Arena arena = Arena.ofShared()) {
                List<Tile> ts = java.util.Arrays.stream(inputs).map(v -> tile(arena, v)).toList();
                op.accept(bs[k], ts);
                res[k] = ts.get(outIndex).toArray();
            }
        }
        return res;
    }

    private static void check(Case c, String op, float[][] r, float[] ref) {
        assertBits(r[0], r[1], op + " native vs java, " + c);
        assertBits(ref, r[1], op + " native vs double reference, " + c);
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void subAddScaleAxpyLerp(Case c) {
        int n = (int) c.n();
        float[] a = random(1, n), b = random(2, n), z = new float[n];
        float s = -1.37f, t = 0.3f;
        float[] ref = new float[n];

        for (int i = 0; i < n; i++) ref[i] = (float) ((double) a[i] - b[i]);
        check(c, "sub", both(c, new float[][] {a, b, z}, (be, x) -> be.sub(x.get(0), x.get(1), x.get(2)), 2), ref);

        for (int i = 0; i < n; i++) ref[i] = (float) ((double) a[i] + b[i]);
        check(c, "add", both(c, new float[][] {a, b, z}, (be, x) -> be.add(x.get(0), x.get(1), x.get(2)), 2), ref);

        for (int i = 0; i < n; i++) ref[i] = (float) ((double) s * a[i]);
        check(c, "scale", both(c, new float[][] {a, z}, (be, x) -> be.scale(x.get(0), s, x.get(1)), 1), ref);
        // out aliasing the input
        check(c, "scale in place", both(c, new float[][] {a}, (be, x) -> be.scale(x.get(0), s, x.get(0)), 0), ref);

        // y + (alpha * x), the product rounded first
        for (int i = 0; i < n; i++) ref[i] = (float) ((double) b[i] + (double) (float) ((double) s * a[i]));
        check(c, "axpy", both(c, new float[][] {a, b}, (be, x) -> be.axpy(s, x.get(0), x.get(1)), 1), ref);

        // ((1-t) * a) + (t * b), 1-t in float32
        float u = (float) (1.0 - t);
        for (int i = 0; i < n; i++) ref[i] = (float) ((double) (float) ((double) u * a[i]) + (double) (float) ((double) t * b[i]));
        check(c, "lerp", both(c, new float[][] {a, b, z}, (be, x) -> be.lerp(x.get(0), x.get(1), t, x.get(2)), 2), ref);
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void weightedSum(Case c) {
        int n = (int) c.n();
        float[][] in = {random(3, n), random(4, n), random(5, n), random(6, n), new float[n]};
        float[] w = {0.3f, -1.7f, 0.5f, 2.25f};
        float[] ref = new float[n];
        for (int i = 0; i < n; i++) {
            // acc = w0*x0, then acc + (wj*xj) left to right, each step rounded to float32
            float acc = (float) ((double) w[0] * in[0][i]);
            for (int j = 1; j < 4; j++) acc = (float) ((double) acc + (double) (float) ((double) w[j] * in[j][i]));
            ref[i] = acc;
        }
        check(c, "weightedSum", both(c, in, (be, x) -> be.weightedSum(x.subList(0, 4), w, x.get(4)), 4), ref);
        // out aliasing xs[0]
        check(c, "weightedSum into xs[0]", both(c, in, (be, x) -> be.weightedSum(x.subList(0, 4), w, x.get(0)), 0), ref);
        float[] one = {0.75f};
        for (int i = 0; i < n; i++) ref[i] = (float) (0.75 * in[1][i]);
        check(c, "weightedSum of one", both(c, in, (be, x) -> be.weightedSum(List.of(x.get(1)), one, x.get(4)), 4), ref);
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void reductions(Case c) {
        checkReductions(c);
    }

    /**
     * Past the 4096-block window reduce.c sums at a time (16,777,216 elements), ending in a partial
     * block: one data set, the double reference once, then each kernel variant.
     */
    @Test
    void reductionsPastOneWindowKeepTheCanonicalOrder() {
        int n = 16_777_216 + 65_536 + 4097;
        float[] a = random(7, n), b = random(8, n);
        double[] refs = canonicalSums(a, b);
        try (Arena arena = Arena.ofShared()) {
            Tile ta = tile(arena, a), tb = tile(arena, b);
            for (Case c : List.of(new Case(n, 1, true), new Case(n, 3, true), new Case(n, 2, false))) {
                Backend nb = nat(c);
                double[] nv = {nb.sumAbs(ta), nb.sumSquares(ta), nb.dot(ta, tb)};
                for (int k = 0; k < 3; k++) assertBits(refs[k], nv[k], REDUCTIONS[k] + " native vs double reference, " + c);
            }
        }
    }

    /**
     * The worker pool serves calls from several Java threads at once (each call its own job, helpers
     * spread over them): every call still gives the single-thread bits, and none hangs.
     */
    @Test
    void concurrentCallsFromManyJavaThreadsGiveTheSingleThreadBits() throws Exception {
        int n = 300_007;
        float[] a = random(11, n), b = random(12, n);
        try (Arena arena = Arena.ofShared(); ExecutorService callers = Executors.newFixedThreadPool(4)) {
            Tile ta = tile(arena, a), tb = tile(arena, b);
            Backend one = nat(new Case(n, 1, true)), three = nat(new Case(n, 3, true));
            double want = one.dot(ta, tb);
            Tile sum = tile(arena, new float[n]);
            one.add(ta, tb, sum);
            List<Future<String>> results = new ArrayList<>();
            for (int c = 0; c < 4; c++) {
                results.add(callers.submit(() -> {
                    Tile out = tile(arena, new float[n]);
                    for (int it = 0; it < 20; it++) {
                        if (Double.doubleToRawLongBits(three.dot(ta, tb)) != Double.doubleToRawLongBits(want)) return "dot differs";
                        three.add(ta, tb, out);
                        if (out.data().mismatch(sum.data()) != -1) return "add differs";
                    }
                    return "ok";
                }));
            }
            for (Future<String> f : results) assertEquals("ok", f.get(120, TimeUnit.SECONDS));
        }
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void aNaNInputSumsToNaN(Case c) {
        // NaN is a result, never an error signal: the native sums propagate it as the Java ones do
        int n = (int) c.n();
        float[] a = random(9, n), b = random(10, n);
        a[n - 1] = Float.NaN;
        try (Arena arena = Arena.ofShared()) {
            Tile ta = tile(arena, a), tb = tile(arena, b);
            Backend nb = nat(c);
            assertTrue(Double.isNaN(nb.sumAbs(ta)) && Double.isNaN(nb.sumSquares(ta)) && Double.isNaN(nb.dot(tb, ta)),
                    "NaN at the last element, " + c);
        }
    }

    private static final String[] REDUCTIONS = {"sumAbs", "sumSquares", "dot"};

    /** sum |a|, sum a², sum a·b in the canonical order (docs/methods.md), written out independently in {@link CanonicalSum}. */
    private static double[] canonicalSums(float[] a, float[] b) {
        return new double[] {CanonicalSum.of(a, b, 0), CanonicalSum.of(a, b, 1), CanonicalSum.of(a, b, 2)};
    }

    private static void checkReductions(Case c) {
        int n = (int) c.n();
        float[] a = random(7, n), b = random(8, n);
        double[] refs = canonicalSums(a, b);
        try (Arena arena = Arena.ofShared()) {
            Tile ta = tile(arena, a), tb = tile(arena, b);
            Backend nb = nat(c);
            double[] jv = {java().sumAbs(ta), java().sumSquares(ta), java().dot(ta, tb)};
            double[] nv = {nb.sumAbs(ta), nb.sumSquares(ta), nb.dot(ta, tb)};
            for (int k = 0; k < 3; k++) {
                assertBits(jv[k], nv[k], REDUCTIONS[k] + " native vs java, " + c);
                assertBits(refs[k], nv[k], REDUCTIONS[k] + " native vs double reference, " + c);
            }
        }
    }
}
