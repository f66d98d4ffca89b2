package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.PortableOps;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * RAM's and RAM+'s loops over chunk tiles ({@link RamPass#program}), a block of elements at a time
 * on arrays: the block's base and each model's τ = θᵢ − θ₀ are copied out of tile memory once, the
 * contributor counts c come from one loop per model, and each loop then runs over the block's
 * elements (loops the JIT can vectorise). Element by element the float32 operations and their order
 * are those of {@link RamPass}'s whole-tensor loops (each element's sum still adds the models in
 * config order), so the same bytes; a model that does not contribute adds nothing (the sum is never
 * −0, so skipping it and adding +0 agree, but it is skipped as there).
 */
final class RamBlocks {
    private static final Parallel PAR = PortableOps.COMMON;
    /** Elements per block: a multiple of nothing in particular, small enough for the cache with a few models. */
    static final int SIZE = 2048;

    private final float[] b = new float[SIZE], sum = new float[SIZE];
    private final float[][] tv;
    private final int[] c = new int[SIZE];

    private RamBlocks(int models) { tv = new float[models][SIZE]; }

    /** Adds S_i (positions model i shares, c > 1) and U_i (positions only model i changed, c = 1) of the chunk. */
    static void count(Tile base, List<Tile> ms, float eps, AtomicLongArray shared, AtomicLongArray unique) {
        int n = ms.size();
        PAR.forRange(base.size(), (lo, hi) -> {
            RamBlocks k = new RamBlocks(n);
            long[] s = new long[n], u = new long[n];
            for (long e = lo; e < hi; e += SIZE) {
                int m = k.load(base, ms, eps, e, hi);
                for (int i = 0; i < n; i++) {
                    float[] t = k.tv[i];
                    long si = 0, ui = 0;
                    for (int x = 0; x < m; x++) {
                        if (Math.abs(t[x]) > eps) { if (k.c[x] > 1) si++; else ui++; }
                    }
                    s[i] += si;
                    u[i] += ui;
                }
            }
            for (int i = 0; i < n; i++) { shared.addAndGet(i, s[i]); unique.addAndGet(i, u[i]); }
        });
    }

    /** out = θ₀ + Σ_i τ_i·[|τ_i| > ε]·(λ_i if c = 1, 1/c if c > 1) over the chunk. */
    static void combine(Tile base, List<Tile> ms, float eps, float[] lambda, Tile out) {
        int n = ms.size();
        PAR.forRange(out.size(), (lo, hi) -> {
            RamBlocks k = new RamBlocks(n);
            for (long e = lo; e < hi; e += SIZE) {
                int m = k.load(base, ms, eps, e, hi);
                java.util.Arrays.fill(k.sum, 0, m, 0f);
                for (int i = 0; i < n; i++) {
                    float[] t = k.tv[i];
                    float l = lambda[i];
                    for (int x = 0; x < m; x++) {
                        float tx = t[x];
                        if (Math.abs(tx) > eps) k.sum[x] += k.c[x] == 1 ? tx * l : tx / k.c[x];
                    }
                }
                // θ = θ₀ + Δ
                for (int x = 0; x < m; x++) k.sum[x] = k.b[x] + k.sum[x];
                MemorySegment.copy(k.sum, 0, out.data(), Tile.F32, e * 4, m);
            }
        });
    }

    /** Loads elements [e, min(e + SIZE, hi)): the base, each model's τ, and c = how many |τ| exceed ε; returns how many. */
    private int load(Tile base, List<Tile> ms, float eps, long e, long hi) {
        int m = (int) Math.min(SIZE, hi - e);
        MemorySegment.copy(base.data(), Tile.F32, e * 4, b, 0, m);
        java.util.Arrays.fill(c, 0, m, 0);
        for (int i = 0; i < tv.length; i++) {
            float[] t = tv[i];
            MemorySegment.copy(ms.get(i).data(), Tile.F32, e * 4, t, 0, m);
            // τ_i = θ_i − θ₀
            for (int x = 0; x < m; x++) t[x] -= b[x];
            for (int x = 0; x < m; x++) if (Math.abs(t[x]) > eps) c[x]++;
        }
        return m;
    }
}
