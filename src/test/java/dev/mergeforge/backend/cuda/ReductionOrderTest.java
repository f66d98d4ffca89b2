package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.CanonicalSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * Pins the canonical reduction order of docs/methods.md itself — 64 stripes per 4096-element block,
 * the adjacent-pairs tree over the stripes, the block sums left to right — on an input whose bits
 * tell it apart from a left-to-right chain and from the other natural tree (pairing s[j] with
 * s[j+32], then s[j+16], ...). Every backend here (Java; native where built; the CUDA kernels on the
 * emulator where it builds), whole-tensor and chunked, dot and laneDots as well as sumAbs, must give
 * the value the test derives by hand and recomputes from the definition (CanonicalSum).
 */
class ReductionOrderTest {
    static final double TWO53 = 0x1p53;

    /**
     * Three blocks (doubles near 2^53 are 2 apart, near 3·2^53 4 apart; ties round to even).
     * Block 0: 2^53 at position 0, 1 at positions 2 and 3. Stripes s0 = 2^53, s2 = s3 = 1; the tree
     * adds (s0+s1) = 2^53 and (s2+s3) = 2 first: 2^53 + 2 exactly. Left to right, 2^53 + 1 is a tie
     * that rounds to 2^53, twice: 2^53; pairing s[j] with s[j+32] first meets s0 + s2 = 2^53 + 1 → 2^53.
     * Block 1: 2^53 at position 0, 1 at positions 1 and 65 (both stripe 1, summed to 2 first):
     * 2^53 + 2 (left to right 2^53).
     * Block 2: 2^53 at 0 and 2 at 64 (stripe 0: 2^53 + 2), 1 at 2, 3 at 32. The tree: (2^53+2) + 1
     * → 2^53 + 4 within stripes 0..31, then + 3 (stripe 32) → 2^53 + 8. Adding stripe 32 to stripe
     * 0 before stripe 2 (as a tree walked from its widest pairing does) gives 2^53 + 4.
     * Total: (2^53+2) + (2^53+2) + (2^53+8) = 3·2^53 + 12 exactly; left to right 3·2^53 + 8; the
     * s[j]+s[j+32] tree 3·2^53 + 4.
     */
    static float[] pinned() {
        float[] x = new float[3 * 4096 + 100];
        x[0] = (float) TWO53;
        x[2] = 1f;
        x[3] = 1f;
        x[4096] = (float) TWO53;
        x[4096 + 1] = 1f;
        x[4096 + 65] = 1f;
        x[8192] = (float) TWO53;
        x[8192 + 64] = 2f;
        x[8192 + 2] = 1f;
        x[8192 + 32] = 3f;
        return x;
    }

    static final double EXPECTED = 3 * TWO53 + 12;

    @Test
    void theDefinitionGivesTheHandDerivedValueAndNotTheSerialOne() {
        float[] x = pinned();
        double serial = 0.0;
        for (float v : x) serial += Math.abs((double) v);
        double halving = 0.0;
        for (int b0 = 0; b0 < x.length; b0 += 4096) {
            double[] s = new double[64];
            for (int p = 0; p < 4096 && b0 + p < x.length; p++) s[p % 64] += Math.abs((double) x[b0 + p]);
            for (int w = 32; w >= 1; w /= 2) for (int j = 0; j < w; j++) s[j] = s[j] + s[j + w];
            halving += s[0];
        }
        assertEquals(EXPECTED, CanonicalSum.of(x, x, 0), 0.0, "the documented tree");
        assertEquals(3 * TWO53 + 8, serial, 0.0, "left to right");
        assertEquals(3 * TWO53 + 4, halving, 0.0, "pairing s[j] with s[j+32] first");
        assertNotEquals(Double.doubleToRawLongBits(serial), Double.doubleToRawLongBits(EXPECTED));
    }

    @Test
    void everyBackendSumsInTheDocumentedTree() {
        float[] x = pinned(), ones = new float[x.length];
        Arrays.fill(ones, 1f);
        List<Backend> backends = new ArrayList<>(List.of(new JavaBackend(2)));
        if (NativeBackend.isAvailable()) backends.add(new NativeBackend(2));
        if (EmulatedDevice.unavailableReason().isEmpty()) backends.add(new CudaBackend(new EmulatedDevice()));
        try (Arena arena = Arena.ofConfined()) {
            for (Backend be : backends) {
                String name = be.name();
                Tile tx = tile(arena, x, Shape.of(x.length)), t1 = tile(arena, ones, Shape.of(x.length));
                assertEquals(EXPECTED, be.sumAbs(tx), 0.0, name + " sumAbs");
                assertEquals(EXPECTED, be.dot(tx, t1), 0.0, name + " dot");
                double[] lane = new double[1];
                be.laneDots(tile(arena, x, Shape.of(x.length, 1)), tile(arena, ones, Shape.of(x.length, 1)),
                        Lanes.along(Shape.of(x.length, 1), 0), lane);
                assertEquals(EXPECTED, lane[0], 0.0, name + " laneDots");
                ChunkOps ops = be.chunkOps().orElseThrow();
                // pieces that cut stripes, rows of 64 and blocks anywhere: the open stripes carry over
                for (int piece : new int[] {1, 3, 63, 65, 4095, 4097, x.length}) {
                    BlockSum acc = new BlockSum();
                    BlockSum[] col = {new BlockSum()};
                    for (int lo = 0; lo < x.length; lo += piece) {
                        int n = Math.min(piece, x.length - lo);
                        Tile part = tile(arena, Arrays.copyOfRange(x, lo, lo + n), Shape.of(n));
                        ops.sumAbs(part, lo, acc);
                        ops.carriedLaneDots(part, tile(arena, Arrays.copyOfRange(ones, lo, lo + n), Shape.of(n)), new Lanes(1, n, 1), lo, col);
                    }
                    assertEquals(EXPECTED, acc.value(), 0.0, name + " chunked sumAbs in pieces of " + piece);
                    assertEquals(EXPECTED, col[0].value(), 0.0, name + " carriedLaneDots in pieces of " + piece);
                }
            }
        } finally {
            for (Backend be : backends) be.close();
        }
    }

    /** A tile in native memory (the kind a chunk runner borrows) holding v. */
    static Tile tile(Arena arena, float[] v, Shape shape) {
        Tile t = new Tile(arena.allocate(4L * v.length, 64), shape);
        MemorySegment.copy(MemorySegment.ofArray(v), 0, t.data(), 0, 4L * v.length);
        return t;
    }
}
