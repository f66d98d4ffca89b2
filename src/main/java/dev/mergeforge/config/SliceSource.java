package dev.mergeforge.config;

/**
 * One source of an output slice: layers [layerStart, layerEnd) of one model.
 *
 * @param model      the model directory
 * @param layerStart first layer taken (inclusive, >= 0)
 * @param layerEnd   end of the range (exclusive, > layerStart), as mergekit's {@code layer_range: [start, end]}
 * @param params     its {@code parameters:} block (empty when absent)
 */
public record SliceSource(String model, int layerStart, int layerEnd, ParamTable params) {
    public SliceSource {
        if (model == null || model.isEmpty()) throw new IllegalArgumentException("a slice source needs a model path");
        if (layerStart < 0 || layerEnd <= layerStart) {
            throw new IllegalArgumentException("layer_range must be [start, end) with 0 <= start < end, got [" + layerStart + ", " + layerEnd + "]");
        }
        if (params == null) throw new IllegalArgumentException("params must not be null; use ParamTable.empty");
    }

    public int length() { return layerEnd - layerStart; }
}
