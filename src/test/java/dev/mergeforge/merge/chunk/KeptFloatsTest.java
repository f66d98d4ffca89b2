package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Values kept between passes: each chunk's floats come back bit for bit (−0.0, NaN payloads,
 * subnormals), found by the chunk's offset, over several buffer pieces; a second write to a chunk
 * replaces the first; a chunk never kept, or read at another size, is an error naming the tensor;
 * nothing is left in java.io.tmpdir.
 */
class KeptFloatsTest {
    @Test
    void eachChunkComesBackBitForBit(@TempDir Path dir) throws Exception {
        Parallel par = new Parallel(1);
        String old = System.getProperty("java.io.tmpdir");
        System.setProperty("java.io.tmpdir", dir.toString());
        try (KeptFloats kept = new KeptFloats("t")) {
            JavaChunkOps ops = new JavaChunkOps(par);
            // two full chunks over several pieces and a short last one
            int n = (int) (2 * KeptFloats.PIECE + 5), last = 7;
            float[] a = values(n, 1), b = values(n, 2), c = values(last, 3);
            kept.write(ops, 0, 0, Tile.ofArray(a.clone()));
            kept.write(ops, n, 0, Tile.ofArray(b.clone()));
            kept.write(ops, 2L * n, 0, Tile.ofArray(c.clone()));
            // the next step's values replace the first chunk's
            float[] a2 = values(n, 4);
            kept.write(ops, 0, 0, Tile.ofArray(a2.clone()));
            assertBits(b, read(kept, ops, n, n));
            assertBits(a2, read(kept, ops, 0, n));
            assertBits(c, read(kept, ops, 2L * n, last));
            IllegalStateException never = assertThrows(IllegalStateException.class, () -> read(kept, ops, 5, n));
            assertTrue(never.getMessage().startsWith("t: no kept values for the chunk at 5"), never.getMessage());
            assertThrows(IllegalStateException.class, () -> read(kept, ops, 0, n - 1));
            try (Stream<Path> files = Files.list(dir)) {
                assertEquals(0, files.count(), "the file is unlinked as it opens");
            }
        } finally {
            System.setProperty("java.io.tmpdir", old);
            par.shutdown();
        }
    }

    private static float[] read(KeptFloats kept, JavaChunkOps ops, long offset, int n) {
        Tile t = Tile.ofArray(new float[n]);
        kept.read(ops, offset, 0, t);
        return t.toArray();
    }

    /** Distinct values per seed, with −0.0, a NaN with a payload, a subnormal and ±Inf among them. */
    private static float[] values(int n, int seed) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) Math.sin(i * 0.37 + seed) * (seed + i % 13);
        x[seed] = -0f;
        x[seed + 1] = Float.intBitsToFloat(0x7fc0_0000 | seed);
        x[seed + 2] = Float.MIN_VALUE * seed;
        x[n - 1] = seed % 2 == 0 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
        return x;
    }

    private static void assertBits(float[] expect, float[] got) {
        assertEquals(expect.length, got.length);
        int[] e = new int[expect.length], g = new int[got.length];
        for (int i = 0; i < e.length; i++) {
            e[i] = Float.floatToRawIntBits(expect[i]);
            g[i] = Float.floatToRawIntBits(got[i]);
        }
        assertArrayEquals(e, g);
    }
}
