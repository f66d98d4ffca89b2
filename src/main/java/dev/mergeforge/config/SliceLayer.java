package dev.mergeforge.config;

import java.util.List;

/**
 * Where one output layer of a {@code slices:} config comes from.
 *
 * @param outLayer     the output layer index (0-based, counted across all slices)
 * @param slice        index of the slice in {@code slices:}
 * @param offset       position of the layer inside its slice
 * @param t            mergekit's interpolation position: offset/(len−1) within the slice, 1 for a one-layer slice
 * @param sourceLayers for each source of the slice (same order), the input layer: layerStart + offset
 */
public record SliceLayer(int outLayer, int slice, int offset, double t, List<Integer> sourceLayers) {
    public SliceLayer {
        sourceLayers = List.copyOf(sourceLayers);
        if (!(t >= 0 && t <= 1)) throw new IllegalArgumentException("t must be in [0, 1], got " + t);
    }
}
