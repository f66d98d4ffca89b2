package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DELLA's drop as one native op ({@code mo_della_drop}, native/src/lanes.c) against the definition op by
 * op on the Java reference ({@link ChunkOps#dellaDropByOps}: laneRanks, affine, dropByProbability) and
 * against plain loops written here (a comparator sort for the ranks, {@link Philox} per element), bit for
 * bit: rows of 1 to 28672 elements of task-vector-like, Gaussian, few-valued (±0, subnormals, ties),
 * all-zero and all-equal data with NaN and ±Inf among them; chunk offsets off the Philox block and past
 * 2^32; slopes of DELLA's configs, zero, positive and NaN; AVX2 on 1 and 3 threads, portable on 2.
 */
class NativeDellaDropTest {
    private static final List<Case> CASES = List.of(new Case(0, 1, true), new Case(0, 3, true), new Case(0, 2, false));
    private static final JavaChunkOps REF = new JavaChunkOps(new Parallel(2));

    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    /** (rows, length) of the rows tried: short rows, the demo's and the 0.3B family's, the 70B slice's. */
    private static final int[][] SHAPES = {{5, 1}, {7, 2}, {3, 7}, {4, 31}, {6, 768}, {5, 1280}, {2, 3392}, {3, 8192}, {1, 28672}};

    /** DELLA's (density, epsilon) of the tests and the configs, as TaskVectorPasses turns them into slope and top. */
    private static final double[][] PARAMS = {{0.5, 0.15}, {0.9, 0.1}, {0.3, 0.0}, {0.2, 0.19}, {0.7, 0.25}};

    @Test
    void taskVectorRows() {
        for (int[] s : SHAPES) {
            float[] v = NativeLaneRanksTest.bf16Differences(s[0] * 31L + s[1], s[0] * s[1]);
            for (double[] p : PARAMS) check("bf16 differences", v, s[0], s[1], p[0], p[1], 0);
            // p from 1 down to 0 along the row: a rank one off changes a decision about once a row
            if (s[1] > 1) compare("bf16 differences, steep", v, s[0], s[1], -1f / (s[1] - 1), 1f, 3);
        }
    }

    @Test
    void gaussianAndFewValues() {
        for (int[] s : SHAPES) {
            int n = s[0] * s[1];
            check("gaussian float32", NativeLaneRanksTest.gaussian(s[1] + 7L, n), s[0], s[1], 0.5, 0.15, 5);
            check("few values, ±0, subnormals", NativeLaneRanksTest.fewValues(s[1] + 11L, n), s[0], s[1], 0.5, 0.15, 37);
        }
    }

    @Test
    void zeroEqualAndNonFiniteRows() {
        int len = 2000, rows = 3;
        check("all zero", new float[rows * len], rows, len, 0.5, 0.15, 0);
        float[] equal = new float[rows * len];
        for (int i = 0; i < equal.length; i++) equal[i] = (i & 1) == 0 ? 0.125f : -0.125f;
        check("all magnitudes equal", equal, rows, len, 0.5, 0.15, 0);
        float[] mixed = NativeLaneRanksTest.bf16Differences(3, rows * len);
        SplittableRandom r = new SplittableRandom(4);
        float[] specials = {Float.NaN, Float.intBitsToFloat(0x7fc00001), Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 0f, Float.MAX_VALUE};
        for (int i = 0; i < 200; i++) mixed[r.nextInt(mixed.length)] = specials[r.nextInt(specials.length)];
        check("NaN, ±Inf, ±0 among bf16 differences", mixed, rows, len, 0.5, 0.15, 0);
        // a row of zeros but one element, and half zeros
        float[] sparse = new float[rows * len];
        sparse[len + 17] = 1e-3f;
        for (int i = 2 * len; i < 3 * len; i += 2) sparse[i] = (float) (i * 1e-7);
        check("zeros but one, half zeros", sparse, rows, len, 0.5, 0.15, 0);
    }

    @Test
    void offsetsAndSlopes() {
        float[] v = NativeLaneRanksTest.bf16Differences(21, 4 * 1280);
        // off the 32-element Philox block, and past 2^32 (64-bit counters)
        for (long offset : new long[]{1, 31, 33, (3L << 32) + 17, (1L << 40) - 5}) check("offset " + offset, v, 4, 1280, 0.5, 0.15, offset);
        // any slope and top the op is given (not only DELLA's): the bits of the three ops still
        for (float[] st : new float[][]{{0f, 0.5f}, {1e-4f, 0.2f}, {-1e-4f, 1.5f}, {-3e-4f, 0.1f}, {Float.NaN, 0.5f}, {-1e-4f, Float.NaN}, {-1f, 2e3f}}) {
            compare("slope " + st[0] + " top " + st[1], v, 4, 1280, st[0], st[1], 7);
        }
    }

    @Test
    void stridedLanesGoOpByOp() {
        float[] v = NativeLaneRanksTest.bf16Differences(22, 2 * 600 * 3);
        for (Case c : CASES) {
            ChunkOps nat = nat(c).chunkOps().orElseThrow();
            Lanes lanes = new Lanes(2, 600, 3);
            assertBits(run(REF, v, lanes, -1e-4f, 0.6f, 9), run(nat, v, lanes, -1e-4f, 0.6f, 9), "strided lanes " + c);
        }
    }

    /** The data on every case against the reference ops and the plain loops, with DELLA's slope and top of (d, ε). */
    private static void check(String what, float[] v, int rows, int len, double density, double epsilon, long offset) {
        // as TaskVectorPasses: p = (d + ε) − r · 2ε/(len − 1); a row of one element keeps with p = d
        float slope = len > 1 ? (float) (-2 * epsilon / (len - 1)) : 0f;
        float top = len > 1 ? (float) (density + epsilon) : (float) density;
        compare(what + " d=" + density + " ε=" + epsilon, v, rows, len, slope, top, offset);
    }

    private static void compare(String what, float[] v, int rows, int len, float slope, float top, long offset) {
        long key = Philox.key(1234, what, rows);
        Lanes lanes = new Lanes(rows, len, 1);
        float[] want = plain(v, rows, len, slope, top, offset, key);
        assertBits(want, run(REF, v, lanes, slope, top, offset, key), what + " " + rows + "x" + len + ": reference ops vs plain loops");
        for (Case c : CASES) {
            float[] got = run(nat(c).chunkOps().orElseThrow(), v, lanes, slope, top, offset, key);
            assertBits(want, got, what + " " + rows + "x" + len + " offset " + offset + " " + c + ": native vs plain loops");
        }
    }

    private static float[] run(ChunkOps ops, float[] v, Lanes lanes, float slope, float top, long offset) {
        return run(ops, v, lanes, slope, top, offset, Philox.key(99, "strided", 0));
    }

    private static float[] run(ChunkOps ops, float[] v, Lanes lanes, float slope, float top, long offset, long key) {
        try (Arena arena = Arena.ofShared()) {
            Tile x = tile(arena, v), scratch = tile(arena, new float[v.length]);
            ops.dellaDrop(x, lanes, slope, top, offset, key, scratch);
            return x.toArray();
        }
    }

    /**
     * Plain loops: each row's ranks by sorting its positions (|x| bits descending, position ascending),
     * p = slope·r + top in float32, kept iff the element's Philox draw is below threshold24(p).
     */
    static float[] plain(float[] v, int rows, int len, float slope, float top, long offset, long key) {
        float[] out = v.clone();
        for (int r = 0; r < rows; r++) {
            int row = r * len;
            Integer[] order = new Integer[len];
            for (int k = 0; k < len; k++) order[k] = k;
            Arrays.sort(order, Comparator.<Integer>comparingInt(k -> -(Float.floatToRawIntBits(v[row + k]) & 0x7fffffff)).thenComparingInt(k -> k));
            for (int q = 0; q < len; q++) {
                int k = order[q];
                float p = slope * (float) q;
                p = p + top;
                long u = Philox.uniform24(key, offset + row + k);
                if (u >= Philox.threshold24(p)) out[row + k] = 0f;
            }
        }
        return out;
    }

    /** The steep rows above do hinge on exact ranks: with every rank one off, some decisions change. */
    @Test
    void ranksMatter() {
        int rows = 8, len = 1280;
        float[] v = NativeLaneRanksTest.bf16Differences(5 * 31L + 1280, rows * len);
        float slope = -1f / (len - 1);
        long key = Philox.key(1234, "bf16 differences, steep", rows);
        float[] exact = plain(v, rows, len, slope, 1f, 3, key);
        float[] shifted = plain(v, rows, len, slope, 1f + slope, 3, key);   // p(r + 1) for every r, to a rounding
        int differ = 0;
        for (int i = 0; i < v.length; i++) if (Float.floatToRawIntBits(exact[i]) != Float.floatToRawIntBits(shifted[i])) differ++;
        assertTrue(differ > 0, "a rank one off changes no decision: the comparisons above could not see it");
    }
}
