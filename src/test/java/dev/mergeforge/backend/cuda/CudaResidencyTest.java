package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Tiles kept on the (emulated) device between ops: host writes, host ops, the pool handing the
 * same memory out again and prefetches that do not match the next load must all see the values
 * the Java backend would. Sizes cut 4096-element blocks unevenly.
 */
class CudaResidencyTest {
    static final Shape SHAPE = Shape.of(3, 1367);   // 4101 elements
    static final int N = (int) SHAPE.numel();
    static final ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @BeforeEach
    void emulator() {
        assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
    }

    static float[] random(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[N];
        for (int i = 0; i < N; i++) v[i] = (float) r.nextGaussian();
        return v;
    }

    static Tile filled(TilePool pool, float[] v) {
        Tile t = pool.borrow(SHAPE);
        for (int i = 0; i < N; i++) t.set(i, v[i]);
        return t;
    }

    static float[] read(CudaBackend be, Tile t) {
        be.hostAccess(t);
        return t.toArray();
    }

    @Test
    void deviceResultsStayOnTheDeviceUntilHostAccess() {
        try (CudaBackend be = new CudaBackend(new EmulatedDevice()); TilePool pool = new TilePool(Long.MAX_VALUE, be::released)) {
            float[] x = random(1);
            Tile a = filled(pool, x), out = filled(pool, new float[N]);
            be.scale(a, 2f, out);
            assertEquals(0f, out.get(0), "the result is on the device only; host memory is untouched");
            assertEquals(2, be.residentTiles());
            float[] got = read(be, out);
            for (int i = 0; i < N; i++) assertEquals(2f * x[i], got[i], "out[" + i + "]");
            assertEquals(1, be.residentTiles(), "hostAccess forgets the device copy");
            // a host write after hostAccess is what the next op reads
            out.set(7, 1000f);
            be.add(out, a, a);
            assertEquals(1000f + x[7], read(be, a)[7]);
            pool.release(a);
            pool.release(out);
            assertEquals(0, be.residentTiles(), "released tiles leave no device copy");
        }
    }

    @Test
    void aPoolThatOutlivesTheBackendCanStillReleaseItsTiles() {
        TilePool pool;
        Tile t;
        try (CudaBackend be = new CudaBackend(new EmulatedDevice())) {
            pool = new TilePool(Long.MAX_VALUE, be::released);
            t = filled(pool, random(11));
            be.scale(t, 2f, t);
        }
        pool.release(t);   // the listener runs after the backend closed: nothing is resident any more
        pool.close();
    }

    @Test
    void aTileBorrowedAgainAfterReleaseReadsItsHostWrites() {
        try (CudaBackend be = new CudaBackend(new EmulatedDevice()); TilePool pool = new TilePool(Long.MAX_VALUE, be::released)) {
            float[] x = random(2);
            Tile a = filled(pool, x), t = pool.borrow(SHAPE);
            be.scale(a, 3f, t);   // t is DEVICE_ONLY
            long address = t.data().address();
            pool.release(t);
            Tile again = pool.borrow(SHAPE);
            assertEquals(address, again.data().address(), "the pool hands out the same memory");
            float[] y = random(3);
            for (int i = 0; i < N; i++) again.set(i, y[i]);   // a plain host write: the new owner owes no hostAccess
            Tile out = pool.borrow(SHAPE);
            be.sub(again, a, out);
            float[] got = read(be, out);
            for (int i = 0; i < N; i++) assertEquals(y[i] - x[i], got[i], "out[" + i + "]");
            pool.releaseAll(List.of(a, again, out));
        }
    }

    @Test
    void withoutTheReleaseListenerHostAccessBeforeTheWriteIsEnough() {
        try (CudaBackend be = new CudaBackend(new EmulatedDevice()); TilePool pool = new TilePool()) {
            float[] x = random(4);
            Tile a = filled(pool, x), t = pool.borrow(SHAPE);
            be.scale(a, 3f, t);
            pool.release(t);
            Tile again = pool.borrow(SHAPE);
            be.hostAccess(again);   // the documented rule for code that writes tile memory itself
            for (int i = 0; i < N; i++) again.set(i, 5f);
            be.add(again, a, again);
            float[] got = read(be, again);
            for (int i = 0; i < N; i++) assertEquals(5f + x[i], got[i], "again[" + i + "]");
            pool.releaseAll(List.of(a, again));
        }
    }

    @Test
    void hostOpsBetweenDeviceOpsSeeCurrentValues() {
        float[] x = random(5), y = random(6);
        float[] expect;
        try (JavaBackend java = new JavaBackend(1)) {
            Tile a = Tile.ofArray(SHAPE, x.clone()), b = Tile.ofArray(SHAPE, y.clone()), t1 = Tile.ofArray(SHAPE, new float[N]),
                    t2 = Tile.ofArray(SHAPE, new float[N]), t3 = Tile.ofArray(SHAPE, new float[N]);
            java.sub(a, b, t1);
            java.mul(t1, a, t2);
            java.add(t2, b, t3);
            java.clamp(t3, -0.5f, 0.5f, t3);
            java.scale(t3, 3f, t3);
            java.affine(t3, 2f, 1f, t1);
            java.axpy(0.5f, t1, t3);
            expect = t3.toArray();
            assertEquals(java.countNonZero(t1), countNonZeroOnCuda(x, y));
        }
        try (CudaBackend be = new CudaBackend(new EmulatedDevice()); TilePool pool = new TilePool(Long.MAX_VALUE, be::released)) {
            Tile a = filled(pool, x), b = filled(pool, y), t1 = pool.borrow(SHAPE), t2 = pool.borrow(SHAPE), t3 = pool.borrow(SHAPE);
            be.sub(a, b, t1);            // device: t1 DEVICE_ONLY
            be.mul(t1, a, t2);           // host: t1 copied back, t2 written on the host
            be.add(t2, b, t3);           // device: t2 uploaded
            be.clamp(t3, -0.5f, 0.5f, t3);   // host, in place on a DEVICE_ONLY tile
            be.scale(t3, 3f, t3);        // device again
            be.affine(t3, 2f, 1f, t1);   // host, writing a tile that still had a device copy
            be.axpy(0.5f, t1, t3);       // device: must read t1's host values, not the old device copy
            assertArrayEquals(expect, read(be, t3));
            pool.releaseAll(List.of(a, b, t1, t2, t3));
        }
    }

    private static long countNonZeroOnCuda(float[] x, float[] y) {
        try (CudaBackend be = new CudaBackend(new EmulatedDevice()); TilePool pool = new TilePool(Long.MAX_VALUE, be::released)) {
            Tile a = filled(pool, x), b = filled(pool, y), t1 = pool.borrow(SHAPE), t2 = pool.borrow(SHAPE), t3 = pool.borrow(SHAPE);
            be.sub(a, b, t1);
            be.mul(t1, a, t2);
            be.add(t2, b, t3);
            be.clamp(t3, -0.5f, 0.5f, t3);
            be.scale(t3, 3f, t3);
            be.affine(t3, 2f, 1f, t1);
            long c = be.countNonZero(t1);   // a host reduction over a tile the host op just wrote
            pool.releaseAll(List.of(a, b, t1, t2, t3));
            return c;
        }
    }

    /** x as bf16 bytes in native memory, as a mapped file would hold them. */
    static TensorView bf16(Arena arena, String name, float[] x) {
        MemorySegment s = arena.allocate(2L * x.length, 16);
        for (int i = 0; i < x.length; i++) s.setAtIndex(BF16, i, Floats.floatToBf16(x[i]));
        return new TensorView(name, DType.BF16, SHAPE, s, "test");
    }

    static TensorView f32(Arena arena, String name, float[] x) {
        MemorySegment s = arena.allocate(4L * x.length, 16);
        MemorySegment.copy(x, 0, s, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, x.length);
        return new TensorView(name, DType.F32, SHAPE, s, "test");
    }

    static float[] widened(float[] x) {
        float[] w = new float[x.length];
        for (int i = 0; i < x.length; i++) w[i] = Floats.bf16ToFloat(Floats.floatToBf16(x[i]));
        return w;
    }

    @Test
    void aPrefetchThatDoesNotMatchTheNextLoadLeavesItCorrect() {
        EmulatedDevice dev = new EmulatedDevice();
        try (Arena arena = Arena.ofConfined(); CudaBackend be = new CudaBackend(dev); TilePool pool = new TilePool(Long.MAX_VALUE, be::released)) {
            float[] xa = random(7), xb = random(8), xc = random(9);
            TensorView a = bf16(arena, "a", xa), b = bf16(arena, "b", xb), c = f32(arena, "c", xc);
            Tile ta = pool.borrow(SHAPE), tb = pool.borrow(SHAPE), tc = pool.borrow(SHAPE);
            be.prefetch(List.of(a));
            be.load(b, tb);   // not the prefetched tensor: copied on the compute stream
            assertArrayEquals(widened(xb), read(be, tb));
            assertEquals(1, be.pendingPrefetches());
            be.load(a, ta);   // the prefetched one
            assertArrayEquals(widened(xa), read(be, ta));
            assertEquals(0, be.pendingPrefetches());
            assertEquals(2L * N, dev.bytesPrefetched());
            assertEquals(4L * N, dev.bytesToDevice(), "a and b went up once each, in bf16");
            // f32: the prefetched buffer becomes the tile's device copy
            be.prefetch(List.of(c));
            be.load(c, tc);
            assertArrayEquals(xc, read(be, tc));
            Tile heap = Tile.ofArray(SHAPE, new float[N]);
            be.prefetch(List.of(c, a));
            be.load(c, heap);
            be.load(a, heap.reshape(SHAPE));
            assertArrayEquals(widened(xa), heap.toArray());
            // prefetches nobody loads are dropped two calls later
            be.prefetch(List.of(b));
            be.prefetch(List.of(c));
            assertEquals(2, be.pendingPrefetches());
            pool.releaseAll(List.of(ta, tb, tc));
        }
        assertEquals(0, dev.liveEvents());
    }

    @Test
    void storeIntoMemoryOfAResidentTileCopiesThatTileBackFirst() {
        try (CudaBackend be = new CudaBackend(new EmulatedDevice()); TilePool pool = new TilePool(Long.MAX_VALUE, be::released)) {
            float[] x = random(10);
            Tile a = filled(pool, x), t = pool.borrow(SHAPE), out = pool.borrow(SHAPE);
            be.scale(a, 2f, t);   // t DEVICE_ONLY
            be.scale(a, 0.5f, out);
            // the Merger stages the stored result in a model tile's memory: here t's first half
            MemorySegment dst = t.data().asSlice(0, 2L * N);
            be.store(out, DType.BF16, dst);
            float[] back = read(be, t);
            // floats past the 2N stored bytes keep the values only the device had
            for (int i = 0; i < N; i++) if (4L * i >= 2L * N) assertEquals(2f * x[i], back[i], "t[" + i + "]");
            for (int i = 0; i < N; i++) assertEquals(Floats.floatToBf16(0.5f * x[i]), dst.getAtIndex(BF16, i), "stored[" + i + "]");
            pool.releaseAll(List.of(a, t, out));
        }
    }
}
