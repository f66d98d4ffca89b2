package dev.mergeforge.merge.chunk;

import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * Elements [offset, offset + size) of one tensor's inputs, loaded as float32: the base (null when
 * the tensor has none), the models in config order, and scratch tiles of the same size.
 */
public record Chunk(long offset, long size, Tile base, List<Tile> models, List<Tile> scratchTiles) {

    public Tile model(int j) { return models.get(j); }

    public Tile scratch(int k) { return scratchTiles.get(k); }
}
