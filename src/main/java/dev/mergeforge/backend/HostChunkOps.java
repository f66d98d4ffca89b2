package dev.mergeforge.backend;

import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * {@link ChunkOps} whose chunk tiles live in host memory (the Java reference, the native
 * backend): the three residency answers are the same for all of them — no memory of their own to
 * fit chunks into, no chunk kept between passes, nothing to move before host code runs.
 */
public interface HostChunkOps extends ChunkOps {
    /** Host memory only: the caller's budget already sized the chunk. */
    @Override
    default long fitChunk(String tensor, int tiles, long align, long wanted) { return wanted; }

    /** Every load reads the stored bytes on the host. */
    @Override
    default boolean holds(TensorView src, long from, long n) { return false; }

    /** Chunk tiles live in host memory: nothing to move. */
    @Override
    default void onHost(List<Tile> reads, List<Tile> writes, Runnable body) { body.run(); }
}
