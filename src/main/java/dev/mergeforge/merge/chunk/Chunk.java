package dev.mergeforge.merge.chunk;

import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Elements [offset, offset + size) of one tensor's inputs, loaded as float32: the base (null when
 * the tensor has none), the models in config order, scratch tiles of the same size, and the models'
 * per-element statistics in the same window (aligned with the models; empty unless the program
 * streams them, {@link ChunkProgram#elementStats}).
 *
 * <p>For a pass that reads the stored inputs itself ({@link ChunkProgram.Pass#readsStored}) the
 * runner loads nothing: {@link #stored} names the inputs (their pages mapped in for the pass), and the
 * base and model tiles hold no input values — the pass may use them as scratch.
 *
 * @param stored the stored inputs of a chunk left unloaded, or null for a loaded chunk
 */
public record Chunk(long offset, long size, Tile base, List<Tile> models, List<Tile> scratchTiles, List<Tile> stats, Stored stored) {

    /** The stored inputs of an unloaded chunk: the base view (null when the tensor has none) and the models' in config order. */
    public record Stored(TensorView base, List<TensorView> models) {
        public Stored { models = List.copyOf(models); }
    }

    /** A loaded chunk. */
    public Chunk(long offset, long size, Tile base, List<Tile> models, List<Tile> scratchTiles, List<Tile> stats) {
        this(offset, size, base, models, scratchTiles, stats, null);
    }

    /** A loaded chunk without statistics. */
    public Chunk(long offset, long size, Tile base, List<Tile> models, List<Tile> scratchTiles) {
        this(offset, size, base, models, scratchTiles, List.of());
    }

    public Tile model(int j) { return models.get(j); }

    /** Model {@code j}'s statistic over this chunk's elements. */
    public Tile stat(int j) { return stats.get(j); }

    public Tile scratch(int k) { return scratchTiles.get(k); }
}
