package dev.mergeforge.api;

import dev.mergeforge.errors.ConfigException;

import java.nio.file.Path;

/**
 * A calibration: run {@code model} (a directory or a Hugging Face cache id) over {@code data} (text,
 * JSONL with "text" or "input_ids"; null samples from the model itself) and write the statistic per
 * weight to {@code output} (docs/calibration.md, docs/aim-stats.md).
 *
 * @param stat     act_mean (for AIM) or gram (for regmean)
 * @param seqLen   tokens per block, 0 for the default
 * @param device   cpu, cuda or cuda:N
 * @param threads  0 for one per core
 * @param useCache read and write the calibration cache
 */
public record CalibrateRequest(String model, String stat, Path data, int samples, int seqLen, long seed, String device, int threads,
                               boolean useCache, Path output) {
    public CalibrateRequest {
        if (model == null) throw new ConfigException("calibrate request: the model is missing; give a model directory or cache id");
        if (output == null) throw new ConfigException("calibrate request: the output stats file is missing; give where it goes");
        if (!"act_mean".equals(stat) && !"gram".equals(stat)) {
            throw new ConfigException("--stat " + stat + ": unknown statistic; valid: act_mean, gram");
        }
        if (device == null) throw new ConfigException("calibrate request: device is missing; give cpu, cuda or cuda:N");
    }

    /** act_mean with the command line's defaults: 128 self-sampled blocks, seed 42, on the CPU, cached. */
    public static CalibrateRequest of(String model, Path output) {
        return new CalibrateRequest(model, "act_mean", null, 128, 0, 42, "cpu", 0, true, output);
    }
}
