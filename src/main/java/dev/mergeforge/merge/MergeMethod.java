package dev.mergeforge.merge;

import dev.mergeforge.tensor.Tile;

/**
 * One merge method with its global hyperparameters already resolved for a tensor. {@code merge}
 * writes the merged tensor into {@code out} (same shape as the inputs). It may overwrite the
 * model tiles ({@code in.models()}: the Merger never reuses them) but must not modify
 * {@code in.base()}, which AIM reads after the method returns.
 */
public interface MergeMethod {
    void merge(MergeContext ctx, MergeInputs in, Tile out);
}
