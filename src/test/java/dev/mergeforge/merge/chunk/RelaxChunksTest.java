package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * AIM's relaxation chunk by chunk ({@link ChunkOps#relax}, docs/aim.md): over chunks of whole rows
 * (the last one short) it gives the bits of the whole-tensor {@link Backend#relax} (the oracle) and
 * of a scalar loop written here from the formula, along columns, rows and elements, with omega at
 * 0, 1 and between and importances of exactly 0 and 1 (the exact ends); the native chunk ops give the
 * Java reference's bits; a chunk that cuts a row is refused.
 */
class RelaxChunksTest {
    private static final Parallel PAR = new Parallel(2);

    @AfterAll static void close() { PAR.shutdown(); }

    static float[] values(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = r.nextInt(13) == 0 ? (r.nextBoolean() ? 0f : -0f) : (float) (r.nextGaussian() * 0.05);
        return v;
    }

    /** Importances in [0, 1] with exact 0s and 1s. */
    static float[] importance(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = switch (r.nextInt(6)) { case 0 -> 0f; case 1 -> 1f; default -> (float) r.nextDouble(); };
        return v;
    }

    /** The formula of docs/aim.md, element by element, written out once more. */
    static float[] reference(float[] base, float[] merged, float[] imp, float omega, Backend.Axis axis, long cols) {
        float[] out = new float[base.length];
        for (int i = 0; i < base.length; i++) {
            int c = switch (axis) { case COLUMNS -> (int) (i % cols); case ROWS -> (int) (i / cols); case ELEMENTS -> i; };
            float f = 1f - ((1f - omega) * imp[c]);
            out[i] = f == 1f ? merged[i] : f == 0f ? base[i] : base[i] + ((merged[i] - base[i]) * f);
        }
        return out;
    }

    /** Relaxes [rows, cols] chunk by chunk, {@code rowsPerChunk} rows each (a single row along ELEMENTS: a chunk of any cut). */
    static float[] byChunks(ChunkOps ops, float[] base, float[] merged, Combination.Relax r, long chunk) {
        float[] out = new float[base.length];
        for (long off = 0; off < base.length; off += chunk) {
            int n = (int) Math.min(chunk, base.length - off);
            Tile b = Tile.ofArray(Arrays.copyOfRange(base, (int) off, (int) off + n));
            Tile m = Tile.ofArray(Arrays.copyOfRange(merged, (int) off, (int) off + n));
            // in place, as the combine pass runs it
            ops.relax(b, m, r, off, m);
            System.arraycopy(m.toArray(), 0, out, (int) off, n);
        }
        return out;
    }

    static void assertBits(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) fail(what + ": element " + i + " is " + got[i] + ", expected " + want[i]);
        }
    }

    @Test
    void chunksOfWholeRowsGiveTheWholeTensorsBits() {
        List<ChunkOps> others = new ArrayList<>();
        NativeBackend nat = NativeBackend.isAvailable() ? new NativeBackend(3) : null;
        if (nat != null) others.add(nat.chunkOps().orElseThrow());
        JavaChunkOps java = new JavaChunkOps(PAR);
        int rows = 37, cols = 29, n = rows * cols;
        float[] base = values(1, n), merged = values(2, n);
        try (JavaBackend whole = new JavaBackend(2)) {
            for (Backend.Axis axis : Backend.Axis.values()) {
                int channels = (int) axis.channels(n, axis == Backend.Axis.ELEMENTS ? n : cols);
                float[] imp = importance(axis.ordinal() + 3, channels);
                for (float omega : new float[] {0f, 0.4f, 1f}) {
                    long tensorCols = axis == Backend.Axis.ELEMENTS ? n : cols;
                    Combination.Relax r = new Combination.Relax(imp, omega, axis, tensorCols);
                    float[] ref = reference(base, merged, imp, omega, axis, cols);
                    Shape shape = axis == Backend.Axis.ELEMENTS ? Shape.of(n) : Shape.of(rows, cols);
                    Tile out = Tile.ofArray(merged.clone());
                    whole.relax(new Tile(Tile.ofArray(base.clone()).data(), shape), new Tile(out.data(), shape), Tile.ofArray(imp), omega, axis,
                            new Tile(out.data(), shape));
                    String what = axis + " omega " + omega;
                    assertBits(ref, out.toArray(), what + ": the whole-tensor oracle against the formula");
                    // 1 row, 2 rows and 10 rows per chunk (the last chunk short); along elements any cut, 97 among them
                    long[] chunks = axis == Backend.Axis.ELEMENTS ? new long[] {1, 97, 300} : new long[] {cols, 2L * cols, 10L * cols};
                    for (long chunk : chunks) {
                        assertBits(ref, byChunks(java, base, merged, r, chunk), what + ", java chunks of " + chunk);
                        for (ChunkOps o : others) assertBits(ref, byChunks(o, base, merged, r, chunk), what + ", " + o.name() + " chunks of " + chunk);
                    }
                    if (omega == 0.4f) assertTrue(!Arrays.equals(ref, merged), "the relaxation changes something: " + what);
                }
            }
        } finally {
            if (nat != null) nat.close();
        }
    }

    @Test
    void aChunkThatCutsARowIsRefused() {
        Combination.Relax r = new Combination.Relax(new float[8], 0.4f, Backend.Axis.COLUMNS, 8);
        Tile t = Tile.ofArray(new float[8]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new JavaChunkOps(PAR).relax(t, t, r, 4, t));
        assertTrue(e.getMessage().contains("whole rows"), e.getMessage());
        Combination.Relax rows = new Combination.Relax(new float[3], 0.4f, Backend.Axis.ROWS, 8);
        // rows 2..3 of a tensor whose importance has 3 rows: past its channels
        assertThrows(IllegalArgumentException.class, () -> new JavaChunkOps(PAR).relax(Tile.ofArray(new float[16]), Tile.ofArray(new float[16]), rows, 16,
                Tile.ofArray(new float[16])));
        if (NativeBackend.isAvailable()) {
            try (NativeBackend nat = new NativeBackend(1)) {
                assertThrows(IllegalArgumentException.class, () -> nat.chunkOps().orElseThrow().relax(t, t, r, 4, t));
            }
        }
    }

    @Test
    void aRelaxedProgramCutsWholeRows() {
        ChunkProgram p = new ChunkProgram(6, 0, List.of(), (ops, c, out) -> { });
        assertEquals(6 * 4 / 2, p.relaxed(new Combination.Relax(new float[4], 0.4f, Backend.Axis.COLUMNS, 4)).align(), "lcm of 6 and a row of 4");
        assertEquals(7 * 6, p.relaxed(new Combination.Relax(new float[9], 0.4f, Backend.Axis.ROWS, 7)).align(), "lcm of 6 and a row of 7");
        assertEquals(6, p.relaxed(new Combination.Relax(new float[9], 0.4f, Backend.Axis.ELEMENTS, 9)).align(), "elements: any cut the method allows");
    }
}
