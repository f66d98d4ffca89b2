package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.CanonicalSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.RefPhilox;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Chunk bookkeeping past 2^31 elements, proven on offset windows (a few thousand elements placed
 * at tensor indices beyond 2^31 and 2^32), never by allocating such a tensor: chunk counts and sizes,
 * reductions whose blocks are placed by the 64-bit tensor index, and Philox drops keyed by it, on the
 * Java and native chunk ops against plain references.
 */
class ChunkArithmeticTest {

    static List<Backend> backends() {
        List<Backend> bs = new ArrayList<>(List.of(new JavaBackend(2)));
        if (NativeBackend.isAvailable()) bs.add(new NativeBackend(2));
        return bs;
    }

    @Test
    void chunkCountsAndSizesAreLong() {
        long numel = 128256L * 16384 * 2;        // 4.2e9 elements, a 256k × 16384 tensor
        long chunk = 3L << 20;
        assertEquals((numel + chunk - 1) / chunk, ChunkRunner.chunks(numel, chunk));
        long last = ChunkRunner.chunks(numel, chunk) - 1;
        assertEquals(numel - last * chunk, ChunkRunner.chunkSize(numel, chunk, last));
        assertEquals(chunk, ChunkRunner.chunkSize(numel, chunk, last - 1));
        // row-aligned chunks of a 16384-wide tensor: whole rows, at least one
        assertEquals(16384L * 192, ChunkRunner.chunkFor(16_384, chunk));
        assertEquals(16384L, ChunkRunner.chunkFor(16_384, 100));
        assertEquals(0, ChunkRunner.chunks(0, chunk));
    }

    /** The canonical order written out plainly (CanonicalSum): blocks and stripes placed by the 64-bit tensor index. */
    static double reference(float[] x, long offset) {
        return CanonicalSum.window(offset, x.length, i -> Math.abs((double) x[(int) (i - offset)]));
    }

    @Test
    void reductionsPlaceBlocksByTheTensorIndexPast2To32() {
        SplittableRandom r = new SplittableRandom(3);
        float[] x = new float[3 * Reductions.BLOCK + 1234];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * (i % 5 == 0 ? 1e6f : 1e-3f);
        for (long offset : new long[] {(1L << 31) - 777, (1L << 32) - 4096 + 5, 5L << 32}) {
            double expect = reference(x, offset);
            for (Backend be : backends()) {
                ChunkOps ops = be.chunkOps().orElseThrow();
                for (int piece : new int[] {x.length, 1000, 4096, 333}) {
                    // the window fed in pieces of any size: still the reference's bits
                    BlockSum acc = new BlockSum();
                    // the whole-tensor reduction's state at the window, the elements before it zeros
                    BlockSum skip = BlockSum.at(offset);
                    for (int lo = 0; lo < x.length; lo += piece) {
                        int n = Math.min(piece, x.length - lo);
                        float[] part = java.util.Arrays.copyOfRange(x, lo, lo + n);
                        ops.sumAbs(Tile.ofArray(part), offset + lo, skip);
                    }
                    assertEquals(Double.doubleToRawLongBits(expect), Double.doubleToRawLongBits(skip.value()),
                            be.name() + " at offset " + offset + " in pieces of " + piece + ": " + skip.value() + " vs " + expect);
                    assertThrows(IllegalStateException.class, () -> ops.sumAbs(Tile.ofArray(1f), offset, acc), "a reduction fed out of order is refused");
                }
                be.close();
            }
        }
    }

    /**
     * Column dots carried over slabs of rows: per column, the canonical order over the rows
     * (CanonicalSum, written out independently), and the whole-tensor laneDots along axis 0 — for slabs of
     * 1, 333, 4096 rows and all rows, so slab edges fall inside, before and on the block edges.
     */
    @Test
    void carriedColumnDotsHaveTheWholeTensorBits() {
        int rows = 2 * Reductions.BLOCK + 300, cols = 3;
        SplittableRandom r = new SplittableRandom(5);
        float[] a = new float[rows * cols], b = new float[rows * cols];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian() * (i % 7 == 0 ? 1e5f : 1e-2f);
            b[i] = (float) r.nextGaussian();
        }
        double[] expect = new double[cols];
        for (int j = 0; j < cols; j++) {
            final int col = j;
            expect[j] = CanonicalSum.of(rows, k -> (double) a[(int) k * cols + col] * (double) b[(int) k * cols + col]);
        }
        for (Backend be : backends()) {
            double[] whole = new double[cols];
            be.laneDots(Tile.ofArray(Shape.of(rows, cols), a), Tile.ofArray(Shape.of(rows, cols), b),
                    dev.mergeforge.backend.Lanes.along(Shape.of(rows, cols), 0), whole);
            ChunkOps ops = be.chunkOps().orElseThrow();
            for (int slab : new int[] {1, 333, Reductions.BLOCK, rows}) {
                BlockSum[] acc = {new BlockSum(), new BlockSum(), new BlockSum()};
                for (int lo = 0; lo < rows; lo += slab) {
                    int n = Math.min(slab, rows - lo);
                    Tile x = Tile.ofArray(java.util.Arrays.copyOfRange(a, lo * cols, (lo + n) * cols));
                    Tile y = Tile.ofArray(java.util.Arrays.copyOfRange(b, lo * cols, (lo + n) * cols));
                    ops.carriedLaneDots(x, y, new dev.mergeforge.backend.Lanes(1, n, cols), lo, acc);
                }
                for (int j = 0; j < cols; j++) {
                    assertEquals(Double.doubleToRawLongBits(expect[j]), Double.doubleToRawLongBits(acc[j].value()),
                            be.name() + " column " + j + " in slabs of " + slab + " rows");
                    assertEquals(Double.doubleToRawLongBits(whole[j]), Double.doubleToRawLongBits(acc[j].value()), be.name() + " vs laneDots");
                }
                // a slab fed out of order is refused
                assertThrows(IllegalStateException.class, () -> ops.carriedLaneDots(Tile.ofArray(new float[cols]), Tile.ofArray(new float[cols]),
                        new dev.mergeforge.backend.Lanes(1, 1, cols), 0, acc));
            }
            be.close();
        }
    }

    @Test
    void dropsDrawAtThe64BitTensorIndex() {
        long key = 0x1234_5678_9abc_def0L;
        float density = 0.37f;
        for (long offset : new long[] {(1L << 31) - 3, (1L << 34) + 1}) {
            float[] x = new float[5000];
            java.util.Arrays.fill(x, 1f);
            float[] expect = x.clone();
            for (int i = 0; i < x.length; i++) if (!RefPhilox.keep(key, offset + i, density)) expect[i] = 0f;
            for (Backend be : backends()) {
                Tile t = Tile.ofArray(x.clone());
                be.chunkOps().orElseThrow().dropRandom(t, offset, density, key);
                org.junit.jupiter.api.Assertions.assertArrayEquals(expect, t.toArray(), be.name() + " at offset " + offset);
                be.close();
            }
        }
    }
}
