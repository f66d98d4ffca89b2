package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The NaN/Inf check of a chunked merge's inputs: the first load of each chunk looks for them
 * ({@link ChunkOps#load}), the later passes read the same bytes again unchecked ({@link ChunkOps#reload}),
 * and a bad value anywhere — first or last chunk, a tensor of one chunk or several, with or without
 * reduction passes — is still seen by the time the runner is asked ({@link ChunkRunner#sawNonFinite}).
 */
class ChunkChecksTest {
    static final long N = 10;

    static List<Backend> backends() {
        List<Backend> bs = new ArrayList<>(List.of(new JavaBackend(2)));
        if (NativeBackend.isAvailable()) bs.add(new NativeBackend(2));
        return bs;
    }

    /** The ops, counting their load and reload calls into {@code counts} ([loads, reloads]). */
    static ChunkOps counting(ChunkOps ops, long[] counts) {
        return (ChunkOps) Proxy.newProxyInstance(ChunkOps.class.getClassLoader(), new Class<?>[] {ChunkOps.class}, (proxy, m, args) -> {
            if (m.getName().equals("load")) counts[0]++;
            if (m.getName().equals("reload")) counts[1]++;
            try {
                return m.invoke(ops, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    /** A float32 input of N elements, NaN at {@code bad} (none when negative). */
    static TensorView input(Arena arena, String name, int bad) {
        MemorySegment s = arena.allocate(N * 4, 4);
        for (int i = 0; i < N; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, i == bad ? Float.NaN : 0.25f * i);
        return new TensorView(name, DType.F32, Shape.of(N), s, name + ".safetensors");
    }

    /** {@code passes} reduction passes that read nothing, and a combine that copies the base. */
    static ChunkProgram program(int passes) {
        List<ChunkProgram.Pass> ps = new ArrayList<>();
        for (int p = 0; p < passes; p++) {
            ps.add(new ChunkProgram.Pass() {
                @Override public boolean needed() { return true; }

                @Override public void chunk(ChunkOps ops, Chunk c) { }

                @Override public void end() { }
            });
        }
        return new ChunkProgram(1, 0, ps, (ops, c, out) -> ops.scale(c.base(), 1f, out));
    }

    /** Runs the program over base, ft (NaN at {@code bad}) in chunks of {@code chunk}; returns [saw after reduce, saw at the end, loads, reloads, chunks]. */
    static long[] run(Backend be, int passes, long chunk, int bad) {
        long[] counts = new long[2];
        try (Arena arena = Arena.ofConfined(); TilePool pool = new TilePool();
             ChunkRunner r = new ChunkRunner(counting(be.chunkOps().orElseThrow(), counts), program(passes), input(arena, "base", -1),
                     List.of(input(arena, "ft", bad)), Shape.of(N), chunk, pool)) {
            r.reduce();
            boolean afterReduce = r.sawNonFinite();
            for (long k = 0; k < r.chunks(); k++) r.combine(k);
            return new long[] {afterReduce ? 1 : 0, r.sawNonFinite() ? 1 : 0, counts[0], counts[1], r.chunks()};
        }
    }

    @Test
    void aBadValueInAnyChunkIsSeenWhateverThePasses() {
        for (Backend be : backends()) {
            for (long chunk : new long[] {4, 16}) {
                for (int bad : new int[] {0, 5, (int) N - 1}) {
                    String what = be.name() + ", chunks of " + chunk + ", NaN at " + bad;
                    long[] two = run(be, 2, chunk, bad);
                    assertEquals(1, two[0], what + ": seen by the reduction passes");
                    assertEquals(1, two[1], what + ": and still seen at the end");
                    long[] none = run(be, 0, chunk, bad);
                    assertEquals(1, none[1], what + ": seen by the combine when no reduction runs");
                }
                assertFalse(run(be, 2, chunk, -1)[1] == 1, be.name() + ": a clean input is clean");
            }
            be.close();
        }
    }

    @Test
    void eachChunkIsCheckedOnceAndReadUncheckedAfter() {
        for (Backend be : backends()) {
            for (long chunk : new long[] {3, 4, 16}) {
                for (int passes : new int[] {0, 1, 3}) {
                    long[] r = run(be, passes, chunk, (int) N - 1);
                    long chunks = r[4], inputs = 2;
                    String what = be.name() + ", " + passes + " passes, " + chunks + " chunks";
                    assertEquals(chunks * inputs, r[2], what + ": one checked load per chunk and input");
                    assertEquals(passes * chunks * inputs, r[3], what + ": every later read unchecked");
                }
            }
            be.close();
        }
    }

    @Test
    void reloadGivesTheLoadsValues() {
        for (Backend be : backends()) {
            ChunkOps ops = be.chunkOps().orElseThrow();
            try (Arena arena = Arena.ofConfined()) {
                for (DType dt : List.of(DType.F32, DType.BF16, DType.F16, DType.F64)) {
                    long n = 1000;
                    MemorySegment bytes = arena.allocate(n * dt.byteSize(), 8);
                    java.util.SplittableRandom rnd = new java.util.SplittableRandom(dt.ordinal());
                    for (long i = 0; i < bytes.byteSize(); i++) bytes.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt());
                    TensorView v = new TensorView("t", dt, Shape.of(n), bytes, "t.safetensors");
                    float[] want = new float[(int) n - 7], got = new float[want.length];
                    assertTrue(ops.load(v, 7, Tile.ofArray(want)) || dt == DType.F64, dt + ": random bytes hold NaN or Inf");
                    ops.reload(v, 7, Tile.ofArray(got));
                    for (int i = 0; i < want.length; i++) {
                        assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), be.name() + " " + dt + " element " + i);
                        assertEquals(Float.floatToRawIntBits(plain(v, 7 + i)), Float.floatToRawIntBits(got[i]), be.name() + " " + dt + " element " + i + " vs a plain conversion");
                    }
                }
            }
            be.close();
        }
    }

    /** Element i of v converted to float32 by the JDK's own conversions (the JVM's half-precision NaNs, which both backends follow). */
    static float plain(TensorView v, long i) {
        MemorySegment s = v.data();
        return switch (v.dtype()) {
            case F32 -> s.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case BF16 -> Float.intBitsToFloat((s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i) & 0xffff) << 16);
            case F16 -> Float.float16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case F64 -> (float) s.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i);
            case I64, I32, I16, I8, U8, BOOL -> throw new IllegalArgumentException(v.dtype().toString());
        };
    }
}
