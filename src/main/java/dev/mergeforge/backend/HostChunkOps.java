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
    /**
     * Most elements per chunk on the host: 4 MiB per float32 tile, so the handful of tiles a pass
     * sweeps op after op stays in the cache and a merge first-touches megabytes of tiles, not the
     * hundreds a budget-sized chunk (up to 2^24 elements, 64 MiB a tile) would. Outputs do not
     * depend on the chunk size (docs/methods.md, "Passes over chunks"); only memory and time do (docs/io.md).
     */
    long HOST_CHUNK = 1L << 20;

    /** Host memory only: the caller's budget sized the chunk; at most {@link #HOST_CHUNK} (a multiple of {@code align}, at least one). */
    @Override
    default long fitChunk(String tensor, int tiles, long align, long wanted) { return capped(wanted, align); }

    /** {@code wanted} elements, or at most {@link #HOST_CHUNK} as a multiple of {@code align} (at least one); the memory estimate uses it too. */
    static long capped(long wanted, long align) { return wanted <= HOST_CHUNK ? wanted : Math.max(align, HOST_CHUNK / align * align); }

    /** Every load reads the stored bytes on the host. */
    @Override
    default boolean holds(TensorView src, long from, long n) { return false; }

    /** Chunk tiles live in host memory: nothing to move. */
    @Override
    default void onHost(List<Tile> reads, List<Tile> writes, Runnable body) { body.run(); }
}
