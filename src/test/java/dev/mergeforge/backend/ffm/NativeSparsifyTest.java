package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Backend.Rescale;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.CanonicalSum;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;


import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.random;
import static dev.mergeforge.backend.ffm.NativeFixtures.ties;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;

/**
 * Magnitude-rank trimming (with many exactly equal magnitudes) and DARE drop/rescale: NativeBackend
 * against JavaBackend bit for bit, and against references written here (a sort by (|x| desc,
 * index asc) for ranks; Philox draws and plain double arithmetic for drops).
 */
class NativeSparsifyTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    /** [java, native] results of op applied in place to a native copy of v. */
    private static float[][] both(Case c, float[] v, java.util.function.BiConsumer<Backend, Tile> op) {
        Backend[] bs = {java(), nat(c)};
        float[][] r = new float[2][];
        for (int k = 0; k < 2; k++) {
            try (Arena arena = Arena.ofShared()) {
                Tile t = tile(arena, v);
                op.accept(bs[k], t);
                r[k] = t.toArray();
            }
        }
        return r;
    }

    /** Reference ranks: rank[i] of element i under (|x| desc, index asc), by sorting (cached per input). */
    private static synchronized int[] ranks(String id, float[] v) {
        return RANKS.computeIfAbsent(id, k -> {
            long[] keys = new long[v.length];
            for (int i = 0; i < v.length; i++) {
                long mag = Float.floatToRawIntBits(v[i]) & 0x7fffffffL;
                keys[i] = ((0x7fffffffL - mag) << 32) | i; // ascending key = descending |x|, then ascending index
            }
            Arrays.sort(keys);
            int[] rank = new int[v.length];
            for (int r = 0; r < keys.length; r++) rank[(int) keys[r]] = r;
            return rank;
        });
    }

    private static final Map<String, int[]> RANKS = new HashMap<>();
    private static final Map<String, int[]> DRAWS = new HashMap<>();

    /** Reference: keep the entries whose rank lies in [from, to). */
    private static float[] rankRef(float[] v, int[] rank, long from, long to) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) out[i] = rank[i] >= from && rank[i] < to ? v[i] : 0f;
        return out;
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void keepRankRange(Case c) {
        int n = (int) c.n();
        long[][] ranges = {{0, n / 3 + 1}, {n / 5, n / 2 + 1}, {1, n}, {n / 2, n}, {0, n}, {n / 4, n / 4},
                {-5, 2}, {n - 1, n + 7}, {0, 1}, {3, 1}};
        for (int seed = 31; seed <= 32; seed++) {
            float[] v = seed == 31 ? ties(seed, n) : random(seed, n);
            int[] rank = ranks(seed + "/" + n, v);
            for (long[] ft : ranges) {
                float[][] r = both(c, v, (b, t) -> b.keepRankRange(t, ft[0], ft[1]));
                String what = "keepRankRange [" + ft[0] + ", " + ft[1] + ") " + c;
                assertBits(r[0], r[1], what + " native vs java");
                assertBits(rankRef(v, rank, ft[0], ft[1]), r[1], what + " native vs sorted reference");
            }
        }
    }

    /** Reference DARE: keep iff uniform24 < ceil(density * 2^24), then rescale in double rounded to float32. */
    private static float[] dropRef(float[] v, float density, long key, Rescale mode) {
        long thr = (long) Math.min(16777216.0, Math.ceil((double) density * 16777216.0));
        int[] u = draws(key, v.length);
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) out[i] = u[i] < thr ? v[i] : 0f;
        switch (mode) {
            case NONE -> { }
            case DENSITY -> { for (int i = 0; i < out.length; i++) out[i] = (float) ((double) out[i] / density); }
            case L1 -> {
                double before = canonicalAbs(v), after = canonicalAbs(out);
                if (!(before < 1e-7 || after < 1e-7)) {
                    float f = (float) (before / after);
                    for (int i = 0; i < out.length; i++) out[i] = (float) ((double) f * out[i]);
                }
            }
        }
        return out;
    }

    /** Philox.uniform24(key, i) for i < n (cached per key and n). */
    private static synchronized int[] draws(long key, int n) {
        return DRAWS.computeIfAbsent(key + "/" + n, k -> {
            int[] u = new int[n];
            for (int i = 0; i < n; i++) u[i] = Philox.uniform24(key, i);
            return u;
        });
    }

    private static double canonicalAbs(float[] v) { return CanonicalSum.of(v, v, 0); }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void dropRescale(Case c) {
        int n = (int) c.n();
        float[] v = random(41, n);
        long[] keys = {Philox.key(7, "model.layers.0.mlp.up_proj.weight", 0), 0L, -1L, 0x123456789abcdefL};
        float[] densities = {0.1f, 0.5f, 0.9f, 1f, 0f, 0.3333f};
        for (Rescale mode : Rescale.values()) {
            for (int d = 0; d < densities.length; d++) {
                float density = densities[d];
                long key = keys[d % keys.length];
                float[][] r = both(c, v, (b, t) -> b.dropRescale(t, density, key, mode));
                String what = "dropRescale " + mode + " density " + density + " key " + key + " " + c;
                assertBits(r[0], r[1], what + " native vs java");
                assertBits(dropRef(v, density, key, mode), r[1], what + " native vs reference");
            }
        }
    }

}
