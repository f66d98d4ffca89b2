package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Backend.Rescale;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.BiConsumer;
import java.util.stream.Stream;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.random;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static dev.mergeforge.backend.ffm.NativeFixtures.ties;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ops NativeBackend serves without a C kernel (elementwise helpers, lane ops, TIES divisor,
 * probability drops, the non-zero count) against the Java reference, bit for bit. NativeBackend
 * does not inherit from JavaBackend, so these compare two implementations: the native chunk ops'
 * own loops and this backend's own code against {@code PortableOps} / {@code LaneRanks}.
 */
class NativeOwnOpsTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    /** Backend's default methods that a host backend rightly leaves as they are: residency no-ops and the CPU solver. */
    private static final Set<String> HOST_DEFAULTS = Set.of("hostAccess", "released", "prefetch", "denseSolver");

    @Test
    void nativeStandsOnItsOwn() {
        assertFalse(JavaBackend.class.isAssignableFrom(NativeBackend.class), "NativeBackend must not inherit from the reference it is tested against");
        List<String> inherited = new ArrayList<>();
        for (Method m : Backend.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || HOST_DEFAULTS.contains(m.getName())) continue;
            try {
                Method impl = NativeBackend.class.getMethod(m.getName(), m.getParameterTypes());
                if (impl.getDeclaringClass() != NativeBackend.class) inherited.add(m.getName() + " from " + impl.getDeclaringClass().getSimpleName());
            } catch (NoSuchMethodException e) {
                throw new AssertionError(e);
            }
        }
        assertTrue(inherited.isEmpty(), "NativeBackend serves these ops with code it does not own: " + inherited);
    }

    /** Rows x cols matrices: a single row, odd shapes around the reduction block and the chunk. */
    static Stream<Arguments> shapes() {
        List<Arguments> out = new ArrayList<>();
        long[][] rc = {{1, 1}, {1, 9}, {3, 7}, {5, 4097}, {65_537, 2}, {67, 1031}};
        for (long[] s : rc) for (int threads : new int[] {1, 3}) out.add(Arguments.of(s[0], s[1], threads));
        return out.stream();
    }

    /** Runs op on the Java reference and on the native backend with fresh copies of the inputs; returns [java, native] of output outIndex. */
    private static float[][] both(int threads, Shape shape, float[][] inputs, BiConsumer<Backend, List<Tile>> op, int outIndex) {
        float[][] res = new float[2][];
        Backend[] bs = {java(), nat(new NativeFixtures.Case(shape.numel(), threads, true))};
        for (int k = 0; k < 2; k++) {
            try (Arena arena = Arena.ofShared()) {
                List<Tile> ts = Arrays.stream(inputs).map(v -> tile(arena, shape, v)).toList();
                op.accept(bs[k], ts);
                res[k] = ts.get(outIndex).toArray();
            }
        }
        return res;
    }

    private static void same(String op, float[][] r) { assertBits(r[0], r[1], op + " native vs java"); }

    @ParameterizedTest @MethodSource("shapes")
    void elementwise(long rows, long cols, int threads) {
        Shape sh = Shape.of(rows, cols);
        int n = (int) sh.numel();
        float[] a = random(11, n), b = random(12, n), z = new float[n];
        String at = " " + sh + " threads=" + threads;
        same("mul" + at, both(threads, sh, new float[][] {a, b, z}, (be, x) -> be.mul(x.get(0), x.get(1), x.get(2)), 2));
        // b holds ±0.0: x/0 is ±inf, 0/0 NaN
        same("div" + at, both(threads, sh, new float[][] {a, b, z}, (be, x) -> be.div(x.get(0), x.get(1), x.get(2)), 2));
        same("abs" + at, both(threads, sh, new float[][] {a, z}, (be, x) -> be.abs(x.get(0), x.get(1)), 1));
        same("clamp" + at, both(threads, sh, new float[][] {a}, (be, x) -> be.clamp(x.get(0), -0.5f, 0.7f, x.get(0)), 0));
        same("clamp below" + at, both(threads, sh, new float[][] {a, z}, (be, x) -> be.clamp(x.get(0), 0f, Float.POSITIVE_INFINITY, x.get(1)), 1));
        same("affine" + at, both(threads, sh, new float[][] {a, z}, (be, x) -> be.affine(x.get(0), -1.37f, 0.3f, x.get(1)), 1));
        same("fill" + at, both(threads, sh, new float[][] {a}, (be, x) -> be.fill(x.get(0), -0f), 0));
        same("keepWhereNonZero" + at, both(threads, sh, new float[][] {a, b, z}, (be, x) -> be.keepWhereNonZero(x.get(0), x.get(1), x.get(2)), 2));

        float[] withNaN = a.clone();
        if (n > 3) { withNaN[1] = Float.NaN; withNaN[2] = Float.intBitsToFloat(0xffc00001); }
        try (Arena arena = Arena.ofShared()) {
            Tile t = tile(arena, sh, withNaN);
            long expected = 0;
            for (float v : withNaN) if (v != 0f || Float.isNaN(v)) expected++;
            assertEquals(expected, java().countNonZero(t), "countNonZero java" + at);
            assertEquals(expected, nat(new NativeFixtures.Case(n, threads, true)).countNonZero(t), "countNonZero native" + at);
        }
    }

    @ParameterizedTest @MethodSource("shapes")
    void disjointDivisor(long rows, long cols, int threads) {
        Shape sh = Shape.of(rows, cols);
        int n = (int) sh.numel();
        float[] x0 = random(21, n), x1 = random(22, n), x2 = ties(23, n), sign = new float[n], z = new float[n];
        float[] w = {0.3f, -1.1f, 0.7f};
        same("disjointDivisor " + sh, both(threads, sh, new float[][] {x0, x1, x2, sign, z}, (be, x) -> {
            be.electSign(x.subList(0, 3), x.get(3));
            be.disjointDivisor(x.subList(0, 3), w, x.get(3), x.get(4));
        }, 4));
    }

    @ParameterizedTest @MethodSource("shapes")
    void laneOps(long rows, long cols, int threads) {
        Shape sh = Shape.of(rows, cols);
        int n = (int) sh.numel();
        float[] a = random(31, n), b = random(32, n), z = new float[n];
        for (int dim = 0; dim < 2; dim++) {
            Lanes lanes = Lanes.along(sh, dim);
            String at = " " + sh + " along " + dim + " threads=" + threads;
            double[][] dots = new double[2][];
            Backend[] bs = {java(), nat(new NativeFixtures.Case(n, threads, true))};
            for (int k = 0; k < 2; k++) {
                try (Arena arena = Arena.ofShared()) {
                    dots[k] = new double[(int) lanes.count()];
                    bs[k].laneDots(tile(arena, sh, a), tile(arena, sh, b), lanes, dots[k]);
                }
            }
            for (int v = 0; v < dots[0].length; v++) assertBits(dots[0][v], dots[1][v], "laneDots lane " + v + at);

            float[] s = random(33, lanes.count());
            same("laneScale" + at, both(threads, sh, new float[][] {a, z}, (be, x) -> be.laneScale(x.get(0), s, lanes, x.get(1)), 1));
            // many exact ties: the lower index ranks first
            same("laneRanks" + at, both(threads, sh, new float[][] {ties(34, n), z}, (be, x) -> be.laneRanks(x.get(0), lanes, x.get(1)), 1));
        }
    }

    /** Keep probabilities with the edge cases: 0, negative, NaN, above 1, subnormal, and ordinary ones. */
    private static float[] probabilities(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] p = new float[n];
        float[] odd = {0f, -0.25f, Float.NaN, 1.5f, 1f, Float.MIN_VALUE, 1e-9f};
        for (int i = 0; i < n; i++) p[i] = r.nextInt(4) == 0 ? odd[r.nextInt(odd.length)] : (float) r.nextDouble();
        return p;
    }

    @ParameterizedTest @MethodSource("shapes")
    void dropByProbability(long rows, long cols, int threads) {
        Shape sh = Shape.of(rows, cols);
        int n = (int) sh.numel();
        float[] x = random(41, n), p = probabilities(42, n);
        for (Rescale mode : Rescale.values()) {
            long key = 0x9e3779b97f4a7c15L + mode.ordinal();
            same("dropByProbability " + mode + " " + sh + " threads=" + threads,
                    both(threads, sh, new float[][] {x, p}, (be, t) -> be.dropByProbability(t.get(0), t.get(1), key, mode), 0));
        }
    }
}
