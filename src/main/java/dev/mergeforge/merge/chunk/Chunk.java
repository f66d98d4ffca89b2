package dev.mergeforge.merge.chunk;

import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Elements [offset, offset + size) of one tensor's inputs, loaded as float32: the base (null when
 * the tensor has none), the models in config order, scratch tiles of the same size, and the models'
 * per-element statistics in the same window (aligned with the models; empty unless the program
 * streams them, {@link ChunkProgram#elementStats}).
 */
public record Chunk(long offset, long size, Tile base, List<Tile> models, List<Tile> scratchTiles, List<Tile> stats) {

    /** A chunk without statistics. */
    public Chunk(long offset, long size, Tile base, List<Tile> models, List<Tile> scratchTiles) {
        this(offset, size, base, models, scratchTiles, List.of());
    }

    public Tile model(int j) { return models.get(j); }

    /** Model {@code j}'s statistic over this chunk's elements. */
    public Tile stat(int j) { return stats.get(j); }

    public Tile scratch(int k) { return scratchTiles.get(k); }
}
