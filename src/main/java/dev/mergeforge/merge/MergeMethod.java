package dev.mergeforge.merge;

import dev.mergeforge.tensor.Tile;

/**
 * One merge method with its global hyperparameters already resolved for a tensor. {@code merge}
 * writes the merged tensor into {@code out} (same shape as the inputs) and must leave the input
 * tiles' contents alone only if it says so: the Merger never reuses them.
 */
public interface MergeMethod {
    void merge(MergeContext ctx, MergeInputs in, Tile out);
}
