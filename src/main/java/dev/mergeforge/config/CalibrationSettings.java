package dev.mergeforge.config;

/**
 * Where calibration statistics come from ({@code calibration:} at the top level, under {@code aim:},
 * or under one {@code models[i]}). Give {@code data} (text, JSONL with "text", or JSONL with
 * "input_ids") to compute statistics, or {@code stats} (a statistics safetensors file) to reuse
 * them — not both. Neither means: generate a task-agnostic set from the base model (seeded).
 *
 * @param data    calibration data file, or null
 * @param stats   precomputed statistics file, or null
 * @param samples number of blocks, or null for the default (128)
 * @param seqLen  tokens per block, or null for the default (512)
 */
public record CalibrationSettings(String data, String stats, Integer samples, Integer seqLen) {
    public static final int DEFAULT_SAMPLES = 128;
    public static final int DEFAULT_SEQ_LEN = 512;

    public CalibrationSettings {
        if (data != null && stats != null) {
            throw new IllegalArgumentException("give calibration data or stats, not both (data '" + data + "', stats '" + stats + "')");
        }
        if (samples != null && samples <= 0) throw new IllegalArgumentException("samples must be > 0, got " + samples);
        if (seqLen != null && seqLen <= 0) throw new IllegalArgumentException("seq_len must be > 0, got " + seqLen);
    }

    public int samplesOrDefault() { return samples == null ? DEFAULT_SAMPLES : samples; }

    public int seqLenOrDefault() { return seqLen == null ? DEFAULT_SEQ_LEN : seqLen; }
}
