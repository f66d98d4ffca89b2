package dev.mergeforge.config;

/**
 * One entry of {@code models:}.
 *
 * @param model       the model directory as written (already checked: no LoRA, no @revision)
 * @param params      its {@code parameters:} block (empty when absent)
 * @param calibration its {@code calibration:} block (our key, for data-informed methods), or null
 */
public record ModelEntry(String model, ParamTable params, CalibrationSettings calibration) {
    public ModelEntry {
        if (model == null || model.isEmpty()) throw new IllegalArgumentException("a model entry needs a model path");
        if (params == null) throw new IllegalArgumentException("params must not be null; use ParamTable.empty");
    }
}
