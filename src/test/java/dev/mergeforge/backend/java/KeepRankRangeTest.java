package dev.mergeforge.backend.java;

import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** keepRankRange against a sort-based reference: rank by |x| descending, ties lower index first. */
class KeepRankRangeTest {

    /** Indices by |x| descending, ties lower index first: a plain sort. */
    static Integer[] order(float[] x) {
        Integer[] order = new Integer[x.length];
        for (int i = 0; i < x.length; i++) order[i] = i;
        Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> -Math.abs((double) x[i])).thenComparingInt(i -> i));
        return order;
    }

    static float[] reference(float[] x, Integer[] order, long from, long to) {
        float[] out = new float[x.length];
        for (int r = 0; r < x.length; r++) {
            int i = order[r];
            out[i] = (r >= from && r < to) ? x[i] : 0f;
        }
        return out;
    }

    static void check(JavaBackend b, float[] x, Integer[] order, long from, long to) {
        Tile t = Tile.ofArray(x.clone());
        b.keepRankRange(t, from, to);
        float[] got = t.toArray(), exp = reference(x, order, from, to);
        for (int i = 0; i < x.length; i++) {
            assertEquals(Float.floatToRawIntBits(exp[i] == 0f ? 0f : exp[i]), Float.floatToRawIntBits(got[i] == 0f && exp[i] == 0f ? 0f : got[i]),
                    "n=" + x.length + " range [" + from + "," + to + ") at " + i);
            if (exp[i] == 0f) assertEquals(0f, Math.abs(got[i]), "dropped entry must be zero at " + i);
        }
    }

    static float[] values(SplittableRandom r, int n, int distinct) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            int k = r.nextInt(2 * distinct + 1) - distinct; // many equal magnitudes, both signs, zeros
            x[i] = k / 4f;
            if (k == 0 && r.nextBoolean()) x[i] = -0f;
        }
        return x;
    }

    @Test
    void smallTensorsAllRanges() {
        try (JavaBackend b = new JavaBackend(2)) {
            SplittableRandom r = new SplittableRandom(1);
            for (int n : new int[] {1, 2, 5, 17, 64}) {
                float[] x = values(r, n, 3);
                Integer[] o = order(x);
                int step = n > 20 ? 7 : 1; // every range on the small ones, a spread on n = 64
                for (int f = 0; f <= n; f += step) for (int t = f; t <= n + 1; t += step) check(b, x, o, f, t);
                for (int f = 0; f <= n; f++) { check(b, x, o, f, n); check(b, x, o, 0, f); check(b, x, o, f, f + 1); }
            }
        }
    }

    @Test
    void edgesAndManyTiesOnLargeTensor() {
        try (JavaBackend b = new JavaBackend(3)) {
            SplittableRandom r = new SplittableRandom(2);
            int n = 150_001; // several parallel chunks
            float[] x = values(r, n, 5);
            long[][] ranges = {{0, 0}, {0, 1}, {0, n}, {n - 1, n}, {0, n / 3}, {n / 3, n / 2}, {1, n - 1}, {12345, 12346}, {n / 2, n + 7}};
            Integer[] o = order(x);
            for (long[] rg : ranges) check(b, x, o, rg[0], rg[1]);
        }
    }

    @Test
    void distinctValuesAndExtremes() {
        try (JavaBackend b = new JavaBackend(1)) {
            SplittableRandom r = new SplittableRandom(3);
            float[] x = new float[5000];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(-30, 30)));
            x[10] = Float.MAX_VALUE; x[11] = -Float.MAX_VALUE; x[12] = Float.MIN_VALUE; x[13] = 0f;
            Integer[] o = order(x);
            for (long k : new long[] {0, 1, 2, 3, 100, 2500, 4999, 5000}) check(b, x, o, 0, k);
            check(b, x, o, 2, 4);
            check(b, x, o, 4990, 5000);
        }
    }
}
