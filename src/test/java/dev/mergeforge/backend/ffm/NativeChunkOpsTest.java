package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.backend.SphereSteps;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.bindings.MergeOps;
import dev.mergeforge.merge.chunk.RankSelection;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.random;
import static dev.mergeforge.backend.ffm.NativeFixtures.ties;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The native chunk ops (NativeChunkOps, native/src/chunk.c, lanes.c, reduce.c, dropout.c) against
 * the Java reference chunk ops bit for bit: random data with NaN (several payloads), ±inf, ±0 and
 * subnormals, odd sizes around the SIMD width, the reduction block and the task chunk, 1 and 3
 * native threads on AVX2 and 2 on the portable kernels; offsets past 2^31 where an op takes one.
 * Rank ops also against a sort by (|x| desc, index asc) written here.
 */
class NativeChunkOpsTest {
    private static Parallel par;
    private static JavaChunkOps ref;

    @BeforeAll static void setUp() {
        NativeFixtures.requireNative();
        par = new Parallel(2);
        ref = new JavaChunkOps(par);
    }

    @AfterAll static void tearDown() {
        NativeFixtures.restoreSimd();
        if (par != null) par.shutdown();
    }

    private static ChunkOps ops(Case c) { return nat(c).chunkOps().orElseThrow(); }

    /** NativeFixtures' cases, the largest size (16 tasks) on 3 threads of the AVX2 kernels only: 65537 already runs two tasks on every variant. */
    static Stream<Arguments> cases() {
        return NativeFixtures.cases().filter(a -> {
            Case c = (Case) a.get()[0];
            return c.n() < 100_000 || (c.threads() == 3 && c.avx2());
        });
    }

    /** random() with NaNs of several payloads (sign set or not), ±inf and more subnormals mixed in. */
    static float[] special(long seed, long n) {
        float[] v = random(seed, n);
        SplittableRandom r = new SplittableRandom(seed ^ 0x5eed);
        int[] nans = {0x7fc00000, 0xffc00000, 0x7fc12345, 0xff800001 | 0x400000, 0x7fe00001};
        for (int i = 0; i < v.length; i++) {
            switch (r.nextInt(40)) {
                case 0 -> v[i] = Float.intBitsToFloat(nans[r.nextInt(nans.length)]);
                case 1 -> v[i] = Float.POSITIVE_INFINITY;
                case 2 -> v[i] = Float.NEGATIVE_INFINITY;
                case 3 -> v[i] = Float.intBitsToFloat(r.nextInt(1, 0x800000) | (r.nextBoolean() ? 0x80000000 : 0));
                default -> { }
            }
        }
        return v;
    }

    /** Runs op on native copies of the inputs with the reference and with native ops; returns [ref, native] copies of every input after it. */
    private static float[][][] both(Case c, float[][] inputs, OpOn op) {
        ChunkOps[] os = {ref, ops(c)};
        float[][][] r = new float[2][][];
        for (int k = 0; k < 2; k++) {
            try (Arena arena = Arena.ofShared()) {
                Tile[] ts = new Tile[inputs.length];
                for (int j = 0; j < ts.length; j++) ts[j] = tile(arena, inputs[j]);
                op.run(os[k], ts);
                r[k] = new float[ts.length][];
                for (int j = 0; j < ts.length; j++) r[k][j] = ts[j].toArray();
            }
        }
        return r;
    }

    @FunctionalInterface private interface OpOn { void run(ChunkOps ops, Tile[] t); }

    private static void same(Case c, String what, float[][] inputs, OpOn op) {
        float[][][] r = both(c, inputs, op);
        for (int j = 0; j < inputs.length; j++) assertBits(r[0][j], r[1][j], what + " tile " + j + " " + c);
    }

    /** y with NaN only where x is not NaN: which of two NaN operands x86 propagates is not pinned (docs/native.md). */
    private static float[] noCommonNaN(float[] x, float[] y) {
        float[] out = y.clone();
        for (int i = 0; i < out.length; i++) if (Float.isNaN(x[i]) && Float.isNaN(out[i])) out[i] = 1.5f;
        return out;
    }

    @ParameterizedTest @MethodSource("cases")
    void maps(Case c) {
        float[] x = special(c.n(), c.n()), y = noCommonNaN(x, special(c.n() + 1, c.n())), o = new float[x.length];
        same(c, "divide by 3", new float[][] {x, o}, (k, t) -> k.divide(t[0], 3f, t[1]));
        same(c, "divide by -0 in place", new float[][] {x}, (k, t) -> k.divide(t[0], -0f, t[0]));
        same(c, "divide by a subnormal", new float[][] {x, o}, (k, t) -> k.divide(t[0], 1e-40f, t[1]));
        same(c, "mul", new float[][] {x, y, o}, (k, t) -> k.mul(t[0], t[1], t[2]));
        same(c, "mul in place", new float[][] {x, y}, (k, t) -> k.mul(t[0], t[1], t[1]));
        same(c, "div", new float[][] {x, y, o}, (k, t) -> k.div(t[0], t[1], t[2]));
        same(c, "div in place", new float[][] {x, y}, (k, t) -> k.div(t[0], t[1], t[0]));
        same(c, "abs", new float[][] {x, o}, (k, t) -> k.abs(t[0], t[1]));
        same(c, "abs in place", new float[][] {x}, (k, t) -> k.abs(t[0], t[0]));
        same(c, "clamp [-0.5, 0.5]", new float[][] {x, o}, (k, t) -> k.clamp(t[0], -0.5f, 0.5f, t[1]));
        same(c, "clamp [0, 0]", new float[][] {x}, (k, t) -> k.clamp(t[0], 0f, 0f, t[0]));
        same(c, "clamp [1e-6, inf]", new float[][] {x, o}, (k, t) -> k.clamp(t[0], 1e-6f, Float.POSITIVE_INFINITY, t[1]));
        same(c, "fill", new float[][] {x}, (k, t) -> k.fill(t[0], -0f));
        same(c, "fill NaN", new float[][] {x}, (k, t) -> k.fill(t[0], Float.intBitsToFloat(0x7fc0beef)));
        same(c, "affine", new float[][] {x, o}, (k, t) -> k.affine(t[0], -1.2345678f, 0.3f, t[1]));
        same(c, "affine in place", new float[][] {x}, (k, t) -> k.affine(t[0], 3e-39f, -1f, t[0]));
        same(c, "keepWhereNonZero", new float[][] {x, y, o}, (k, t) -> k.keepWhereNonZero(t[0], t[1], t[2]));
        same(c, "keepWhereNonZero in place", new float[][] {x, y}, (k, t) -> k.keepWhereNonZero(t[0], t[1], t[1]));
    }

    @ParameterizedTest @MethodSource("cases")
    void disjointDivisor(Case c) {
        float[] a = special(c.n() * 3, c.n()), b = random(c.n() * 3 + 1, c.n()), d = special(c.n() * 3 + 2, c.n());
        float[] sign = new float[a.length];
        SplittableRandom r = new SplittableRandom(c.n());
        for (int i = 0; i < sign.length; i++) sign[i] = r.nextInt(3) - 1;
        float[] w = {0.3f, -1.7f, 2.5e-3f};
        same(c, "disjointDivisor", new float[][] {a, b, d, sign, new float[a.length]},
                (k, t) -> k.disjointDivisor(List.of(t[0], t[1], t[2]), w, t[3], t[4]));
        same(c, "disjointDivisor into an input", new float[][] {a, b, d, sign},
                (k, t) -> k.disjointDivisor(List.of(t[0], t[1], t[2]), w, t[3], t[1]));
    }

    @ParameterizedTest @MethodSource("cases")
    void deltaVariance(Case c) {
        float[] base = special(c.n() * 5, c.n()), a = random(c.n() * 5 + 1, c.n()), b = random(c.n() * 5 + 2, c.n()), d = special(c.n() * 5 + 3, c.n());
        float[] var = new float[a.length];
        same(c, "deltaVariance of 3", new float[][] {base, a, b, noCommonNaN(base, d), var},
                (k, t) -> k.deltaVariance(t[0], List.of(t[1], t[2], t[3]), t[4]));
        same(c, "deltaVariance of 1", new float[][] {base, a, var}, (k, t) -> k.deltaVariance(t[0], List.of(t[1]), t[2]));
        same(c, "deltaVariance of τ", new float[][] {a, b, d, var}, (k, t) -> k.deltaVariance(null, List.of(t[0], t[1], t[2]), t[3]));
    }

    @ParameterizedTest @MethodSource("cases")
    void sphere(Case c) {
        // NaN, ±inf and subnormals in one input of each call: every NaN an element meets then has one payload
        // (which of two NaN operands x86 propagates is not pinned, docs/native.md)
        float[] base = special(c.n() * 7, c.n()), a = random(c.n() * 7 + 1, c.n()), b = random(c.n() * 7 + 2, c.n());
        float[] d = random(c.n() * 7 + 3, c.n()), e = special(c.n() * 7 + 4, c.n()), mean = new float[a.length], tangent = new float[a.length];
        float[] mw = {0.75f, -1.3f, 2.5e-3f}, us = {3.1e-4f, 17f, -0.5f}, dots = {0.2f, -0.9f, 1e-3f}, w = {0.5f, 0.25f, 1.5f};
        SphereSteps tangents = SphereSteps.tangents(mw, 0.37f, us, dots, w);
        for (SphereSteps s : List.of(SphereSteps.mean(mw), SphereSteps.units(mw, 0.37f, us), tangents, tangents.result(0.83f, 0.61f, 7.5f))) {
            same(c, "sphere " + s.level(), new float[][] {base, a, b, d, mean, tangent},
                    (k, t) -> k.sphere(t[0], List.of(t[1], t[2], t[3]), s, t[4], t[5]));
            same(c, "sphere " + s.level() + ", tangent in the first input", new float[][] {base, a, b, d, mean},
                    (k, t) -> k.sphere(t[0], List.of(t[1], t[2], t[3]), s, t[4], t[1]));
        }
        SphereSteps one = SphereSteps.tangents(new float[] {1.7f}, -2f, new float[] {0.3f}, new float[] {0.9f}, new float[] {1f}).result(0.5f, 0.4f, 3f);
        same(c, "sphere of one without a base", new float[][] {e, mean, tangent}, (k, t) -> k.sphere(null, List.of(t[0]), one, t[1], t[2]));
        same(c, "sphere of three without a base", new float[][] {e, a, b, mean, tangent},
                (k, t) -> k.sphere(null, List.of(t[0], t[1], t[2]), tangents.result(-0.2f, 0.99f, 0.125f), t[3], t[4]));
        // the Java levels are the native ones
        assertEquals(List.of(MergeOps.MO_SPHERE_MEAN(), MergeOps.MO_SPHERE_UNITS(), MergeOps.MO_SPHERE_TANGENTS(), MergeOps.MO_SPHERE_RESULT()),
                java.util.Arrays.stream(SphereSteps.Level.values()).map(Enum::ordinal).toList());
    }

    private interface Reduce { void run(ChunkOps ops, Tile a, Tile b, long offset, BlockSum acc); }

    /** The tile fed in pieces of {@code piece} from tensor index {@code offset}: the BlockSum's final bits. */
    private static double feed(ChunkOps ops, Arena arena, float[] a, float[] b, long offset, int piece, Reduce op) {
        BlockSum acc = BlockSum.at(offset);
        for (int lo = 0; lo < a.length; lo += piece) {
            int n = Math.min(piece, a.length - lo);
            op.run(ops, tile(arena, Arrays.copyOfRange(a, lo, lo + n)), tile(arena, Arrays.copyOfRange(b, lo, lo + n)), offset + lo, acc);
        }
        assertEquals(offset + a.length, acc.next());
        return acc.value();
    }

    @ParameterizedTest @MethodSource("cases")
    void reductionsContinueBlocksAtAnyOffset(Case c) {
        // finite data (a NaN would hide every other bit); ±inf, subnormals and ±0 (inf·0 and inf − inf
        // make the default NaN); one NaN of a payload. Two NaNs of different payloads are left out: which
        // one a double sum keeps depends on operand order, which neither gcc nor C2 pins (docs/native.md)
        float[] a = random(c.n() + 7, c.n()), b = random(c.n() + 8, c.n()), s = special(c.n() + 9, c.n()), one = random(c.n() + 10, c.n());
        for (int i = 0; i < s.length; i++) if (Float.isNaN(s[i])) s[i] = i % 2 == 0 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
        one[one.length / 2] = Float.intBitsToFloat(0x7fc12345);
        Reduce[] kinds = {(o, x, y, off, acc) -> o.sumAbs(x, off, acc), (o, x, y, off, acc) -> o.sumSquares(x, off, acc),
                (o, x, y, off, acc) -> o.dot(x, y, off, acc)};
        String[] names = {"sumAbs", "sumSquares", "dot"};
        int n = Math.toIntExact(c.n());
        long[] offsets = n > 100_000 ? new long[] {4095, (1L << 32) + 5} : new long[] {0, 4095, 4096 * 3, (1L << 31) - 777, (1L << 32) + 5};
        int[] pieces = n <= 5000 ? new int[] {n, 1000, 333} : new int[] {n, 70_001};
        try (Arena arena = Arena.ofShared()) {
            for (int q = 0; q < kinds.length; q++) {
                for (long offset : offsets) {
                    for (int piece : pieces) {
                        String what = names[q] + " at " + offset + " in pieces of " + piece + " " + c;
                        assertBits(feed(ref, arena, a, b, offset, piece, kinds[q]), feed(ops(c), arena, a, b, offset, piece, kinds[q]), what);
                        assertBits(feed(ref, arena, s, a, offset, piece, kinds[q]), feed(ops(c), arena, s, a, offset, piece, kinds[q]), what + " (special values)");
                        assertBits(feed(ref, arena, one, b, offset, piece, kinds[q]), feed(ops(c), arena, one, b, offset, piece, kinds[q]), what + " (one NaN)");
                    }
                }
            }
        }
    }

    @ParameterizedTest @MethodSource("cases")
    void absHistograms(Case c) {
        float[] x = special(c.n() + 11, c.n()), t = ties(c.n() + 12, c.n());
        for (float[] v : new float[][] {x, t}) {
            try (Arena arena = Arena.ofShared()) {
                Tile tl = tile(arena, v);
                long[] hr = new long[1 << 15], hn = new long[1 << 15];
                hr[7] = hn[7] = 5;   // counts add to what the histogram holds
                ref.absHistogram(tl, -1, hr);
                ops(c).absHistogram(tl, -1, hn);
                assertArrayEquals(hr, hn, "high histogram " + c);
                // low histograms of the fullest bin, of a NaN/inf bin and of an empty one
                int full = 0;
                for (int b = 0; b < hr.length; b++) if (hr[b] > hr[full]) full = b;
                for (int high : new int[] {full, 0x7f80, 0x7fc0, 0, 12345, (1 << 15) - 1}) {
                    long[] lr = new long[1 << 16], ln = new long[1 << 16];
                    ref.absHistogram(tl, high, lr);
                    ops(c).absHistogram(tl, high, ln);
                    assertArrayEquals(lr, ln, "low histogram of bin " + high + " " + c);
                }
                assertThrows(IllegalArgumentException.class, () -> ops(c).absHistogram(tl, 3, new long[1 << 15]));
            }
        }
    }

    /** Reference: rank[i] of element i under (|x| desc, index asc), by a sort. */
    static int[] ranks(float[] v) {
        long[] keys = new long[v.length];
        for (int i = 0; i < v.length; i++) keys[i] = ((0x7fffffffL - (Float.floatToRawIntBits(v[i]) & 0x7fffffffL)) << 32) | i;
        Arrays.sort(keys);
        int[] rank = new int[v.length];
        for (int r = 0; r < keys.length; r++) rank[(int) keys[r]] = r;
        return rank;
    }

    /** The window of ranks [from, to) found by the histogram passes, applied in pieces with carried tie counts. */
    private static float[] keepRanks(ChunkOps ops, float[] v, long from, long to, int piece, long[] seenOut) {
        RankSelection sel = new RankSelection(v.length, from, to);
        try (Arena arena = Arena.ofShared()) {
            Tile whole = tile(arena, v);
            if (sel.needsPasses()) {
                sel.high(ref, whole);
                sel.endHigh();
                sel.low(ref, whole);
                sel.endLow();
            }
            RankWindow w = sel.window();
            long[] seen = new long[2];
            float[] out = new float[v.length];
            for (int lo = 0; lo < v.length; lo += piece) {
                int n = Math.min(piece, v.length - lo);
                Tile t = tile(arena, Arrays.copyOfRange(v, lo, lo + n));
                ops.keepRanks(t, w, seen);
                System.arraycopy(t.toArray(), 0, out, lo, n);
            }
            seenOut[0] = seen[0];
            seenOut[1] = seen[1];
            return out;
        }
    }

    @ParameterizedTest @MethodSource("cases")
    void keepRanksCarriesTiesAcrossChunks(Case c) {
        int n = (int) c.n();
        boolean big = n > 100_000;
        for (float[] v : big ? new float[][] {ties(n + 21, n)} : new float[][] {ties(n + 21, n), random(n + 22, n)}) {
            int[] rank = big ? null : ranks(v);
            long[][] ranges = big ? new long[][] {{n / 5, n / 2 + 1}, {0, n / 3 + 1}}
                    : new long[][] {{0, n / 3 + 1}, {n / 5, n / 2 + 1}, {1, n}, {0, n}, {n / 4, n / 4}, {n - 1, n}, {0, 1},
                            // windows inside one tied magnitude (both ends on it), a few ranks and many
                            {n / 5, n / 5 + 3}, {n / 5, n / 5 + 50}};
            for (long[] rg : ranges) {
                for (int piece : big ? new int[] {n, 70_001} : new int[] {n, 1000}) {
                    long[] sr = new long[2], sn = new long[2];
                    float[] expect = keepRanks(ref, v, rg[0], rg[1], piece, sr);
                    float[] got = keepRanks(ops(c), v, rg[0], rg[1], piece, sn);
                    String what = "keepRanks [" + rg[0] + ", " + rg[1] + ") in pieces of " + piece + " " + c;
                    assertBits(expect, got, what);
                    assertArrayEquals(sr, sn, what + ": tie counts");
                    if (rank == null) continue;
                    // and the plain definition: ranks in [from, to) kept, the rest +0
                    float[] plain = new float[n];
                    for (int i = 0; i < n; i++) plain[i] = rank[i] >= rg[0] && rank[i] < rg[1] ? v[i] : 0f;
                    assertBits(plain, got, what + " vs the sorted ranks");
                }
            }
        }
    }

    /** Lane geometries (outer, length, inner): rows, columns, one lane, single elements, lanes longer than a block. */
    static List<Lanes> geometries() {
        return List.of(new Lanes(1, 1, 1), new Lanes(3, 7, 1), new Lanes(7, 513, 3), new Lanes(40, 4097, 1), new Lanes(2, 9000, 5),
                new Lanes(1, 70_001, 1), new Lanes(5_000, 3, 1), new Lanes(5, 1, 11), new Lanes(4, 0, 3));
    }

    @ParameterizedTest @MethodSource("cases")
    void laneOps(Case c) {
        if (c.n() != 4097) return;   // the geometries carry the sizes: one case per kernel/thread variant
        for (Lanes l : geometries()) {
            int n = Math.toIntExact(l.numel()), count = Math.toIntExact(l.count());
            float[] a = random(n + 31, n), b = random(n + 32, n), t = ties(n + 33, n), s = special(n + 34, n);
            String what = "lanes " + l + " " + c;
            try (Arena arena = Arena.ofShared()) {
                double[] dr = new double[count + 2], dn = new double[count + 2];
                ref.laneDots(tile(arena, a), tile(arena, b), l, dr);
                ops(c).laneDots(tile(arena, a), tile(arena, b), l, dn);
                for (int v = 0; v < dr.length; v++) assertBits(dr[v], dn[v], "laneDots " + what + " lane " + v);
            }
            // factors with ±0, subnormals and ±inf but no NaN: a NaN factor times a NaN element keeps an unpinned payload
            float[] f = special(count + 35, count);
            for (int v = 0; v < f.length; v++) if (Float.isNaN(f[v])) f[v] = Float.NEGATIVE_INFINITY;
            same(c, "laneScale " + what, new float[][] {s, new float[n]}, (k, tl) -> k.laneScale(tl[0], f, l, tl[1]));
            same(c, "laneScale in place " + what, new float[][] {s}, (k, tl) -> k.laneScale(tl[0], f, l, tl[0]));
            for (float[] v : new float[][] {t, s}) {
                float[][][] r = both(c, new float[][] {v, new float[n]}, (k, tl) -> k.laneRanks(tl[0], l, tl[1]));
                assertBits(r[0][1], r[1][1], "laneRanks " + what);
                // the plain definition: each lane's elements gathered and ranked by a sort
                float[] plain = new float[n];
                for (long lane = 0; lane < l.count(); lane++) {
                    float[] g = new float[(int) l.length()];
                    for (int k = 0; k < g.length; k++) g[k] = v[(int) l.index(lane, k)];
                    int[] rk = ranks(g);
                    for (int k = 0; k < g.length; k++) plain[(int) l.index(lane, k)] = rk[k];
                }
                assertBits(plain, r[1][1], "laneRanks " + what + " vs the sorted ranks");
            }
        }
    }

    @ParameterizedTest @MethodSource("cases")
    void dropsAtTensorOffsets(Case c) {
        float[] x = special(c.n() + 41, c.n());
        float[] p = special(c.n() + 42, c.n());
        SplittableRandom r = new SplittableRandom(c.n());
        // mostly probabilities in [0, 1], with the special values (NaN, inf, negatives, subnormals, ±0) kept
        for (int i = 0; i < p.length; i++) if (r.nextInt(4) != 0) p[i] = (float) r.nextDouble();
        long key = 0x0123_4567_89ab_cdefL ^ c.n();
        for (long offset : c.n() > 100_000 ? new long[] {17, (1L << 34) + 1} : new long[] {0, 17, (1L << 31) - 3, (1L << 34) + 1, 96}) {
            for (float density : new float[] {0.37f, 0f, 1f, 1e-9f, Float.NaN}) {
                same(c, "dropRandom " + density + " at " + offset, new float[][] {x}, (k, t) -> k.dropRandom(t[0], offset, density, key));
            }
            same(c, "dropByProbability at " + offset, new float[][] {x, p}, (k, t) -> k.dropByProbability(t[0], t[1], offset, key));
        }
    }

    /**
     * Keep bits: nonZeroBits against the plain definition (bit j iff the float bits of x[from + j]
     * are not +0.0's: -0.0 and NaN set, a last word's unused bits clear), keepBits against "+0.0
     * where the bit is clear", and the round trip a DELLA drop takes: the bits of a dropped tile,
     * applied to the tile before the drop, give the dropped tile bit for bit. Java and native.
     */
    @ParameterizedTest @MethodSource("cases")
    void keepBitsRoundTrip(Case c) {
        float[] x = special(c.n() + 51, c.n());
        SplittableRandom r = new SplittableRandom(c.n() + 52);
        for (int i = 0; i < x.length; i++) if (r.nextInt(5) == 0) x[i] = r.nextBoolean() ? 0f : -0f;
        float[] p = new float[x.length];
        for (int i = 0; i < p.length; i++) p[i] = (float) r.nextDouble();
        long key = 0x5151_2323L ^ c.n();
        for (long from : new long[] {0, Math.min(c.n(), 3), Math.min(c.n(), 64)}) {
            long n = c.n() - from;
            for (ChunkOps k : List.of(ref, ops(c))) {
                // shared: the reference's drop runs on its pool's threads
                try (Arena arena = Arena.ofShared()) {
                    Tile t = tile(arena, x);
                    MemorySegment bits = arena.allocate(Math.max(8, (n + 63) / 64 * 8), 8);
                    bits.fill((byte) 0x5a);
                    k.nonZeroBits(t, from, n, bits);
                    for (long w = 0; w < (n + 63) / 64; w++) {
                        long want = 0;
                        for (long j = w * 64; j < Math.min(n, w * 64 + 64); j++) {
                            if (Float.floatToRawIntBits(x[(int) (from + j)]) != 0) want |= 1L << (j - w * 64);
                        }
                        assertEquals(want, bits.getAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, w), "nonZeroBits word " + w + " from " + from + " " + c + " " + k.name());
                    }
                    // keepBits of arbitrary bits: +0.0 where clear, untouched where set, nothing outside [from, from + n)
                    long[] mask = new long[(int) ((n + 63) / 64)];
                    for (int w = 0; w < mask.length; w++) mask[w] = r.nextLong();
                    MemorySegment.copy(mask, 0, bits, java.lang.foreign.ValueLayout.JAVA_LONG, 0, mask.length);
                    k.keepBits(t, from, n, bits);
                    float[] want = x.clone();
                    for (long j = 0; j < n; j++) if ((mask[(int) (j / 64)] >>> (j % 64) & 1) == 0) want[(int) (from + j)] = 0f;
                    assertBits(want, t.data().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT), "keepBits from " + from + " " + c + " " + k.name());
                    // the round trip: drop, record, then apply to the undropped values
                    Tile dropped = tile(arena, x), again = tile(arena, x), pt = tile(arena, p);
                    k.dropByProbability(dropped, pt, 17, key);
                    k.nonZeroBits(dropped, from, n, bits);
                    k.keepBits(again, from, n, bits);
                    float[] d = dropped.data().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT), a = again.data().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
                    System.arraycopy(x, 0, d, 0, (int) from);
                    assertBits(d, a, "drop, bits, keep from " + from + " " + c + " " + k.name());
                }
            }
        }
    }

    @Test
    void nativeEntryPointsRefuseBadArgumentsWithTheirCode() {
        MemorySegment nul = MemorySegment.NULL;
        int arg = MergeOps.MO_ERR_ARG();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = arena.allocate(64), l = arena.allocate(8L << 16), d = arena.allocate(64);
            assertEquals(arg, MergeOps.mo_map(99, f, f, 0f, 0f, f, 4, 1), "unknown map");
            assertEquals(arg, MergeOps.mo_map(MergeOps.MO_MAP_MUL(), f, nul, 0f, 0f, f, 4, 1), "mul without y");
            assertEquals(arg, MergeOps.mo_map(MergeOps.MO_MAP_CLAMP(), f, nul, 1f, 0f, f, 4, 1), "clamp with lo > hi");
            MemorySegment open = arena.allocate(8 * 64);
            assertEquals(arg, MergeOps.mo_block_sums(7, f, f, 4, 0, open, d, 1), "unknown reduction");
            assertEquals(arg, MergeOps.mo_block_sums(MergeOps.MO_REDUCE_DOT(), f, nul, 4, 0, open, d, 1), "dot without b");
            assertEquals(arg, MergeOps.mo_block_sums(MergeOps.MO_REDUCE_SUM_ABS(), f, nul, 4, -1, open, d, 1), "negative offset");
            assertEquals(arg, MergeOps.mo_block_sums(MergeOps.MO_REDUCE_SUM_ABS(), f, nul, 4, 0, nul, d, 1), "no open stripes");
            assertEquals(arg, MergeOps.mo_abs_histogram(f, 4, 1 << 15, l, 1), "high bin beyond 2^15");
            assertEquals(arg, MergeOps.mo_keep_ranks(f, 4, 1, -1, 0, 0, 1, l, 1), "negative window end");
            assertEquals(arg, MergeOps.mo_lane_ranks(f, 1, (1L << 24) + 1, 1, f, 1), "lane too long for float ranks");
            assertEquals(arg, MergeOps.mo_lane_dots(f, f, -1, 1, 1, d, 1), "negative lane geometry");
            assertEquals(arg, MergeOps.mo_drop_at(f, 4, -5, 0.5f, 1L, 1), "negative offset");
            assertEquals(arg, MergeOps.mo_drop_by_probability(f, nul, 4, 0, 1L, 1), "drop without probabilities");
            assertEquals(arg, MergeOps.mo_nonzero_bits(f, 4, nul, 1), "keep bits without a bit array");
            assertEquals(arg, MergeOps.mo_keep_bits(f, -1, f, 1), "negative keep bits count");
            assertEquals(arg, MergeOps.mo_disjoint_divisor(nul, nul, 2, f, f, 4, 1), "divisor without inputs");
            assertEquals(MergeOps.MO_OK(), MergeOps.mo_map(MergeOps.MO_MAP_FILL(), nul, nul, 2f, 0f, f, 4, 1), "fill reads no input");
        }
    }

    @Test
    void sizeMismatchesAreRefusedBeforeTheNativeCall() {
        NativeBackend nb = nat(new Case(1, 2, true));
        ChunkOps ops = nb.chunkOps().orElseThrow();
        Tile a = Tile.ofArray(new float[5]), b = Tile.ofArray(new float[6]);
        List<Consumer<ChunkOps>> bad = new ArrayList<>(List.of(
                o -> o.mul(a, b, a), o -> o.div(a, a, b), o -> o.divide(a, 2f, b), o -> o.abs(a, b), o -> o.clamp(a, 0f, 1f, b),
                o -> o.affine(a, 1f, 0f, b), o -> o.keepWhereNonZero(a, b, a), o -> o.dot(a, b, 0, new BlockSum()),
                o -> o.dropByProbability(a, b, 0, 1L), o -> o.clamp(a, 1f, 0f, a),
                o -> o.disjointDivisor(List.of(a, b), new float[] {1f, 1f}, a, a), o -> o.disjointDivisor(List.of(a), new float[] {1f, 1f}, a, a),
                o -> o.laneDots(a, a, new Lanes(2, 3, 1), new double[2]), o -> o.laneScale(a, new float[1], new Lanes(5, 1, 1), a),
                o -> o.laneRanks(a, new Lanes(1, 5, 1), a), o -> o.absHistogram(a, -1, new long[1 << 16])));
        for (int k = 0; k < bad.size(); k++) {
            Consumer<ChunkOps> op = bad.get(k);
            IllegalArgumentException r = assertThrows(IllegalArgumentException.class, () -> op.accept(ref), "reference, case " + k);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> op.accept(ops), "native, case " + k);
            assertEquals(r.getClass(), e.getClass());
        }
    }
}
