package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.Params;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkRunner;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Multislerp's fallback where it is not zero: task vectors τ and −2τ (on a grid, exact) with equal
 * weights have a unit mean of exactly zero, so two models fall back to Σ wᵢxᵢ + θ₀ = θ₀ − τ/2. The
 * whole-tensor path and the chunks — several, and one, where the combine resumes from the task
 * vectors the mean's pass left in the tiles — on Java and native give exactly those values. (With τ
 * and −τ the fallback is θ₀ whatever the weights, which hides a wrong weight.)
 */
class MultiSlerpFallbackTest {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static JavaBackend jb;
    private static NativeBackend nat;

    @BeforeAll static void open() {
        jb = new JavaBackend(2);
        if (NativeBackend.isAvailable()) nat = new NativeBackend(2);
    }

    @AfterAll static void close() {
        jb.close();
        if (nat != null) nat.close();
    }

    @Test
    void scaledAntipodalTaskVectorsFallBackToTheWeightedSum() {
        int n = 9_001;
        SplittableRandom r = new SplittableRandom(3);
        float[] base = new float[n], tau = new float[n], x0 = new float[n], x1 = new float[n], want = new float[n];
        for (int i = 0; i < n; i++) {
            base[i] = (r.nextInt(64) - 32) / 16f;
            tau[i] = (r.nextInt(33) - 16) / 8f;
            x0[i] = base[i] + tau[i];
            x1[i] = base[i] - 2 * tau[i];
            want[i] = base[i] - tau[i] / 2;
        }
        Shape shape = Shape.of(n);
        MultiSlerp method = new MultiSlerp(true, 1e-8);
        List<Params> params = List.of(weight(), weight());
        try (Arena arena = Arena.ofConfined(); TilePool pool = new TilePool()) {
            TensorView b = view("base", base, shape, arena), m0 = view("m0", x0, shape, arena), m1 = view("m1", x1, shape, arena);
            assertArrayEquals(bits(want), bits(whole(method, params, pool, base, x0, x1)), "whole-tensor path");
            for (Backend be : nat == null ? List.of((Backend) jb) : List.of(jb, nat)) {
                ChunkOps ops = be.chunkOps().orElseThrow();
                for (long chunk : new long[] {1000, n}) {
                    ChunkProgram p = method.program(new TensorSetup(Harness.TENSOR, shape, params, -1, true, 1, note -> { }));
                    float[] got = new float[n];
                    try (ChunkRunner run = new ChunkRunner(ops, p, b, List.of(m0, m1), shape, chunk, pool)) {
                        run.reduce();
                        for (long k = 0; k < run.chunks(); k++) {
                            Tile t = run.combine(k);
                            MemorySegment.copy(t.data(), F, 0, got, (int) run.offsetOf(k), (int) t.size());
                        }
                    }
                    assertArrayEquals(bits(want), bits(got), be.name() + " chunks of " + chunk);
                }
            }
        }
    }

    private static float[] whole(MultiSlerp method, List<Params> params, TilePool pool, float[] base, float[] x0, float[] x1) {
        Tile b = Tile.ofArray(base.clone()), out = Tile.ofArray(new float[base.length]);
        List<Tile> ms = new ArrayList<>(List.of(Tile.ofArray(x0.clone()), Tile.ofArray(x1.clone())));
        method.merge(new MergeContext(jb, pool, 1, note -> { }), new MergeInputs(Harness.TENSOR, b, ms, params, -1, 3), out);
        return out.toArray();
    }

    private static Params weight() {
        return Harness.params(MultiSlerp.SPEC.perModel(), Map.of("weight", 1.0), "models[0].parameters");
    }

    private static TensorView view(String name, float[] x, Shape shape, Arena arena) {
        MemorySegment s = arena.allocate((long) x.length * 4, 8);
        MemorySegment.copy(x, 0, s, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0, x.length);
        return new TensorView(name, DType.F32, shape, s, "test");
    }

    private static int[] bits(float[] v) {
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
        return b;
    }
}
