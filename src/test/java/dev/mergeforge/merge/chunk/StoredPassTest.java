package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A reduction pass that reads its chunks' stored inputs itself ({@link ChunkProgram.Pass#readsStored},
 * SCE's variance passes): the runner loads nothing for it and names the inputs and window instead;
 * the first pass that loads a chunk makes the NaN/Inf check; a combine never resumes from the tiles of
 * an unloaded chunk (they hold no inputs).
 */
class StoredPassTest {
    /** What the stored pass saw: per chunk {offset, size, variance element 0 bits}. */
    private final List<long[]> seen = new ArrayList<>();

    private ChunkProgram program(boolean loadedPassAfter, boolean[] resumed) {
        ChunkProgram.Pass stored = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }

            @Override public boolean readsStored() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) {
                Tile var = c.scratch(0);
                ops.storedVariance(c.stored().base(), c.stored().models(), c.offset(), c.models(), var);
                float[] v = new float[1];
                ops.onHost(List.of(var), List.of(), () -> v[0] = var.get(0));
                seen.add(new long[] {c.offset(), c.size(), Float.floatToRawIntBits(v[0])});
            }

            @Override public void end() { }
        };
        ChunkProgram.Pass loaded = new ChunkProgram.Pass() {
            @Override public boolean needed() { return true; }

            @Override public void chunk(ChunkOps ops, Chunk c) { assertNull(c.stored(), "a loading pass gets a loaded chunk"); }

            @Override public void end() { }
        };
        ChunkProgram.Resumable combine = new ChunkProgram.Resumable() {
            @Override public void chunk(ChunkOps ops, Chunk c, Tile out) { ops.scale(c.base(), 1f, out); }

            @Override public boolean canResume() { return true; }

            @Override public void resume(ChunkOps ops, Chunk c, Tile out) {
                resumed[0] = true;
                ops.scale(c.base(), 1f, out);
            }
        };
        return new ChunkProgram(1, 1, loadedPassAfter ? List.of(stored, loaded) : List.of(stored), combine);
    }

    @Test
    void theRunnerLoadsNothingForAStoredPassAndChecksOnTheFirstLoad() {
        for (Backend be : ChunkChecksTest.backends()) {
            for (long chunk : new long[] {3, 16}) {
                for (boolean after : new boolean[] {false, true}) {
                    seen.clear();
                    long[] counts = new long[2];
                    boolean[] resumed = {false};
                    String what = be.name() + ", chunks of " + chunk + (after ? ", a loading pass after" : "");
                    try (Arena arena = Arena.ofConfined(); TilePool pool = new TilePool()) {
                        TensorView base = ChunkChecksTest.input(arena, "base", -1), ft = ChunkChecksTest.input(arena, "ft", 7);
                        try (ChunkRunner r = new ChunkRunner(ChunkChecksTest.counting(be.chunkOps().orElseThrow(), counts), program(after, resumed),
                                base, List.of(ft), Shape.of(ChunkChecksTest.N), chunk, pool)) {
                            r.reduce();
                            long chunks = r.chunks();
                            assertEquals(after ? chunks * 2 : 0, counts[0], what + ": no load for the stored pass; the first loading pass checks");
                            assertEquals(0, counts[1], what + ": no unchecked reload either");
                            assertEquals(after, r.sawNonFinite(), what + ": the NaN seen once a pass has loaded its chunk");
                            for (long k = 0; k < chunks; k++) r.combine(k);
                            assertTrue(r.sawNonFinite(), what + ": the NaN seen by the end");
                            assertEquals(chunks, seen.size(), what + ": the stored pass visits every chunk");
                            for (int k = 0; k < seen.size(); k++) {
                                assertEquals(k * chunk, seen.get(k)[0], what + ": chunk " + k + " offset");
                                assertEquals(Math.min(chunk, ChunkChecksTest.N - k * chunk), seen.get(k)[1], what + ": chunk " + k + " size");
                                // one model: its variance is (τ − τ)², +0.0 for a finite τ, NaN at the NaN
                                float v0 = Float.intBitsToFloat((int) seen.get(k)[2]);
                                assertEquals(k * chunk == 7 ? Float.NaN : 0f, v0, what + ": chunk " + k + " variance from the stored bytes");
                            }
                            // one chunk: the combine resumes after a loading pass, never after a stored one (its tiles hold no inputs)
                            if (chunks == 1) assertEquals(after, resumed[0], what + ": resumed only from a loading pass");
                        }
                    }
                }
            }
            be.close();
        }
    }

    @Test
    void aStoredPassNamesTheRunnersInputs() {
        Backend be = ChunkChecksTest.backends().getFirst();
        try (Arena arena = Arena.ofConfined(); TilePool pool = new TilePool()) {
            TensorView base = ChunkChecksTest.input(arena, "base", -1), ft = ChunkChecksTest.input(arena, "ft", -1);
            ChunkProgram.Pass names = new ChunkProgram.Pass() {
                @Override public boolean needed() { return true; }

                @Override public boolean readsStored() { return true; }

                @Override public void chunk(ChunkOps ops, Chunk c) {
                    assertSame(base, c.stored().base());
                    assertEquals(List.of(base, ft), c.stored().models());
                    assertSame(ft, c.stored().models().get(1));
                }

                @Override public void end() { }
            };
            ChunkProgram p = new ChunkProgram(1, 0, List.of(names), (ops, c, out) -> ops.scale(c.base(), 1f, out));
            try (ChunkRunner r = new ChunkRunner(be.chunkOps().orElseThrow(), p, base, List.of(base, ft), Shape.of(ChunkChecksTest.N), 4, pool)) {
                r.reduce();
            }
            // statistics streamed beside a stored pass: refused, not silently left unloaded
            ChunkProgram withStats = new ChunkProgram(1, 0, List.of(names), (ops, c, out) -> ops.scale(c.base(), 1f, out), true, 0, 0);
            try (ChunkRunner r = new ChunkRunner(be.chunkOps().orElseThrow(), withStats, base, List.of(base, ft), List.of(ft, ft),
                    Shape.of(ChunkChecksTest.N), 4, pool, ChunkRunner.Reads.NONE)) {
                assertThrows(IllegalStateException.class, r::reduce);
            }
        }
        be.close();
    }
}
