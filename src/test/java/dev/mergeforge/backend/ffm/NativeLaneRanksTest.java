package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Lanes;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code mo_lane_ranks} against the Java reference ({@code LaneRanks}) bit for bit, on lanes built to
 * take each of its ways (native/src/lanes.c): the distinct-keys way (lanes of 1024+ whose first 128
 * keys are at most 3/4 distinct and whose distinct keys stay within a quarter of the lane), its give-up
 * after the sample or at the cap, and the radix sort with one, two, three and more passes and a
 * skipped middle pass. {@link #way} restates the C rule so that each input is checked to take the way
 * it is meant for; the ranks themselves do not depend on the way.
 */
class NativeLaneRanksTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    enum Way { DISTINCT, GIVE_UP_SAMPLE, GIVE_UP_CAP, RADIX }

    /** The way lanes.c takes for one lane (DISTINCT_MIN 1024, DISTINCT_SAMPLE 128, cap length / 4). */
    static Way way(float[] lane) {
        int n = lane.length;
        if (n < 1024) return Way.RADIX;
        Set<Integer> seen = new HashSet<>();
        for (int k = 0; k < n; k++) {
            seen.add(Float.floatToRawIntBits(lane[k]) & 0x7fffffff);
            if (seen.size() > n / 4) return Way.GIVE_UP_CAP;
            if (k == 127 && 4 * seen.size() > 3 * 128) return Way.GIVE_UP_SAMPLE;
        }
        return Way.DISTINCT;
    }

    private static float bf16(float f) {
        int u = Float.floatToRawIntBits(f);
        return Float.intBitsToFloat((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000);
    }

    /** Task-vector rows: θ₁ − θ₀ in float32 of two bf16 tensors, θ₁ a small step from θ₀ (few significant bits, ~10% distinct). */
    static float[] bf16Differences(long seed, int n) { return bf16Differences(seed, n, 0.001); }

    static float[] bf16Differences(long seed, int n, double step) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            float base = bf16((float) (r.nextGaussian() * 0.02));
            v[i] = bf16(base + (float) (r.nextGaussian() * step)) - base;
        }
        return v;
    }

    static float[] gaussian(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * 0.02);
        return v;
    }

    /** Few magnitudes, both signs, ±0 and subnormals among them: long runs of exact ties. */
    static float[] fewValues(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] mags = {0f, Float.MIN_VALUE, 3 * Float.MIN_VALUE, 1e-40f, Float.MIN_NORMAL, 1e-3f, 0.25f, 0.5f, 1f, 3e38f};
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            float m = mags[r.nextInt(mags.length)];
            v[i] = r.nextBoolean() ? m : -m;
        }
        return v;
    }

    /** Ranks of lane-major data v on the Java reference and on the native backend (threads), compared bit for bit. */
    private static void same(String what, float[] v, Lanes lanes, int threads) {
        float[][] r = new float[2][];
        for (int k = 0; k < 2; k++) {
            try (Arena arena = Arena.ofShared()) {
                Tile x = tile(arena, Shape.of(v.length), v), out = tile(arena, Shape.of(v.length), new float[v.length]);
                if (k == 0) java().laneRanks(x, lanes, out);
                else nat(new NativeFixtures.Case(v.length, threads, true)).laneRanks(x, lanes, out);
                r[k] = out.toArray();
            }
        }
        assertBits(r[0], r[1], "laneRanks " + what + " " + lanes + " threads=" + threads + ": native vs java");
    }

    /** Lane v of data laid out as lanes says. */
    private static float[] lane(float[] data, Lanes lanes, long v) {
        float[] g = new float[(int) lanes.length()];
        for (int k = 0; k < g.length; k++) g[k] = data[(int) lanes.index(v, k)];
        return g;
    }

    /** Checks that every lane of data takes the way meant, then compares native with Java on 1 and 2 threads. */
    private static void check(String what, float[] data, Lanes lanes, Way meant) {
        for (long v = 0; v < lanes.count(); v++) assertEquals(meant, way(lane(data, lanes, v)), what + " lane " + v + " takes another way");
        same(what, data, lanes, 1);
        same(what, data, lanes, 2);
    }

    @Test
    void distinctWay() {
        check("bf16 differences", bf16Differences(1, 6 * 8192), new Lanes(6, 8192, 1), Way.DISTINCT);
        check("bf16 differences", bf16Differences(2, 3 * 28672), new Lanes(3, 28672, 1), Way.DISTINCT);
        check("bf16 differences, the shortest lanes", bf16Differences(3, 4 * 1024), new Lanes(4, 1024, 1), Way.DISTINCT);
        check("bf16 differences, strided", bf16Differences(4, 2 * 2048 * 3), new Lanes(2, 2048, 3), Way.DISTINCT);
        check("few values, ±0, subnormals", fewValues(5, 3 * 5000), new Lanes(3, 5000, 1), Way.DISTINCT);
        check("few values, strided", fewValues(6, 1500 * 7), new Lanes(1, 1500, 7), Way.DISTINCT);
        float[] equal = new float[3 * 2000];
        java.util.Arrays.fill(equal, -0.125f);
        for (int i = 0; i < equal.length; i += 2) equal[i] = 0.125f;
        check("all magnitudes equal", equal, new Lanes(3, 2000, 1), Way.DISTINCT);
    }

    @Test
    void distinctWayGivesUp() {
        check("gaussian float32", gaussian(7, 4 * 8192), new Lanes(4, 8192, 1), Way.GIVE_UP_SAMPLE);
        check("gaussian float32, strided", gaussian(8, 3000 * 2), new Lanes(1, 3000, 2), Way.GIVE_UP_SAMPLE);
        // a first sample of few values, then all distinct: the distinct keys pass a quarter of the lane
        float[] late = gaussian(9, 2 * 4096);
        float[] few = fewValues(10, late.length);
        for (int v = 0; v < 2; v++) System.arraycopy(few, v * 4096, late, v * 4096, 1000);
        check("few values, then distinct", late, new Lanes(2, 4096, 1), Way.GIVE_UP_CAP);
        check("bf16 differences of larger steps", bf16Differences(11, 2 * 1100, 0.003), new Lanes(2, 1100, 1), Way.GIVE_UP_CAP);
    }

    @Test
    void radixSort() {
        check("gaussian float32, 768", gaussian(12, 5 * 768), new Lanes(5, 768, 1), Way.RADIX);
        check("bf16 differences, 768", bf16Differences(13, 5 * 768), new Lanes(5, 768, 1), Way.RADIX);
        check("few values, strided", fewValues(14, 999 * 4), new Lanes(2, 999, 2), Way.RADIX);
        // keys differing in 8 low mantissa bits: one pass
        SplittableRandom r = new SplittableRandom(15);
        float[] one = new float[3 * 700];
        for (int i = 0; i < one.length; i++) one[i] = Float.intBitsToFloat(0x3f800000 | r.nextInt(256)) * (r.nextBoolean() ? 1 : -1);
        check("one pass", one, new Lanes(3, 700, 1), Way.RADIX);
        // keys differing in 20 low mantissa bits: two passes
        float[] two = new float[2 * 900];
        for (int i = 0; i < two.length; i++) two[i] = Float.intBitsToFloat(0x3f800000 | r.nextInt(1 << 20));
        check("two passes", two, new Lanes(2, 900, 1), Way.RADIX);
        // keys differing in the exponent and the lowest mantissa bit only: the middle digit is skipped
        float[] ends = new float[2 * 900];
        for (int i = 0; i < ends.length; i++) ends[i] = Float.intBitsToFloat((100 + r.nextInt(50)) << 23 | 0x2aaaaa | r.nextInt(2));
        check("middle pass skipped", ends, new Lanes(2, 900, 1), Way.RADIX);
        // short lanes: narrow digits, more than three passes
        check("short lanes", gaussian(16, 40 * 50), new Lanes(40, 50, 1), Way.RADIX);
        check("short lanes, strided", fewValues(17, 3 * 33 * 5), new Lanes(3, 33, 5), Way.RADIX);
        check("single elements", gaussian(18, 9), new Lanes(3, 1, 3), Way.RADIX);
        check("two elements, equal", new float[] {0f, -0f}, new Lanes(1, 2, 1), Way.RADIX);
    }
}
