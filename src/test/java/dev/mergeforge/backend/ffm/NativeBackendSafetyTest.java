package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Backend.Axis;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.random;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Heap tiles, argument checks before native calls, and the backend's identity. */
class NativeBackendSafetyTest {
    private static final Case C = new Case(1001, 2, true);

    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @Test
    void identity() {
        assertEquals("native", nat(C).name());
        assertTrue(List.of("avx512", "avx2", "portable").contains(NativeBackend.simd()), NativeBackend.simd());
        assertEquals(null, NativeBackend.unavailableReason());
    }

    @Test
    void heapTilesAreStagedAndWrittenBack() {
        float[] a = random(61, 1001), b = random(62, 1001);
        Backend[] bs = {java(), nat(C)};
        float[][] y = new float[2][], x = new float[2][], w = new float[2][], k = new float[2][];
        for (int i = 0; i < 2; i++) {
            y[i] = b.clone();
            bs[i].axpy(0.7f, Tile.ofArray(a.clone()), Tile.ofArray(y[i]));
            x[i] = a.clone();
            Tile tx = Tile.ofArray(x[i]);
            bs[i].scale(tx, 3f, tx);                      // output aliasing a heap input
            w[i] = new float[1001];
            bs[i].weightedSum(List.of(Tile.ofArray(a.clone()), Tile.ofArray(b.clone())), new float[] {0.25f, 0.75f}, Tile.ofArray(w[i]));
            k[i] = a.clone();
            bs[i].keepRankRange(Tile.ofArray(k[i]), 10, 400);
        }
        assertBits(y[0], y[1], "axpy on heap tiles");
        assertBits(x[0], x[1], "scale in place on a heap tile");
        assertBits(w[0], w[1], "weightedSum on heap tiles");
        assertBits(k[0], k[1], "keepRankRange on a heap tile");
        // and the heap arrays really changed
        assertEquals((float) ((double) b[5] + (float) (0.7 * a[5])), y[1][5]);
        assertEquals(3f * a[7], x[1][7]);
    }

    @Test
    void heapStoreTargetAndMixedTiles() {
        float[] a = random(63, 333);
        byte[] jd = new byte[666], nd = new byte[666];
        java().store(Tile.ofArray(a), DType.BF16, MemorySegment.ofArray(jd));
        nat(C).store(Tile.ofArray(a), DType.BF16, MemorySegment.ofArray(nd));
        assertEquals(java.util.Arrays.toString(jd), java.util.Arrays.toString(nd));
        try (Arena arena = Arena.ofShared()) {
            Tile nativeA = tile(arena, a), heapOut = Tile.ofArray(new float[333]), javaOut = tile(arena, new float[333]);
            nat(C).sub(nativeA, Tile.ofArray(a.clone()), heapOut);
            java().sub(nativeA, tile(arena, a), javaOut);
            assertBits(javaOut.toArray(), heapOut.toArray(), "sub of a native and a heap tile into a heap tile");
        }
    }

    @Test
    void mismatchedSizesAreRejectedBeforeTheCall() {
        try (Arena arena = Arena.ofShared()) {
            Tile a = tile(arena, new float[100]), b = tile(arena, new float[99]);
            assertThrows(IllegalArgumentException.class, () -> nat(C).sub(a, b, a));
            assertThrows(IllegalArgumentException.class, () -> nat(C).dot(a, b));
            assertThrows(IllegalArgumentException.class, () -> nat(C).weightedSum(List.of(a, b), new float[] {1, 1}, a));
            assertThrows(IllegalArgumentException.class, () -> nat(C).weightedSum(List.of(a), new float[] {1, 1}, a));
            MemorySegment small = arena.allocate(150);
            assertThrows(IllegalArgumentException.class, () -> nat(C).store(a, DType.F16, small));
            assertEquals(0, small.get(ValueLayout.JAVA_BYTE, 0));
            Tile m = tile(arena, Shape.of(10, 10), new float[100]);
            assertThrows(IllegalArgumentException.class, () -> nat(C).relax(m, m, tile(arena, new float[9]), 0.5f, Axis.COLUMNS, m));
        }
    }

    @Test
    void freedMemoryIsRejectedNotTouched() {
        Arena arena = Arena.ofShared();
        Tile dead = tile(arena, new float[64]);
        arena.close();
        try (Arena live = Arena.ofShared()) {
            Tile ok = tile(live, new float[64]);
            assertThrows(IllegalStateException.class, () -> nat(C).add(ok, dead, ok));
            // a freed input reached only through the pointer array of a k-ary op
            assertThrows(IllegalStateException.class, () -> nat(C).electSign(List.of(ok, dead), ok));
        }
    }

    @Test
    void memoryConfinedToAnotherThreadIsRejected() throws Exception {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        try (Arena confined = Arena.ofConfined()) {
            Tile mine = tile(confined, new float[64]);
            Thread t = new Thread(() -> {
                try (Arena other = Arena.ofShared()) {
                    Tile ok = tile(other, new float[64]);
                    nat(C).weightedSum(List.of(ok, mine), new float[] {1, 1}, ok);
                } catch (Throwable e) {
                    thrown.set(e);
                }
            });
            t.start();
            t.join();
        }
        assertInstanceOf(IllegalStateException.class, thrown.get());
    }
}
