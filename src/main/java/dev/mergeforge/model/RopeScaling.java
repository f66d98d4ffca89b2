package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.errors.ConfigException;

/**
 * How rotary position frequencies are rescaled for long contexts, as config.json's
 * {@code rope_scaling} (transformers 4.x) or {@code rope_parameters} (5.x) states it.
 * Supported: none ("default"), "linear" (positions divided by {@code factor}) and "llama3"
 * (Llama 3.1's wavelength-banded rescaling). Other types (dynamic, yarn, longrope) are refused.
 */
public record RopeScaling(Type type, double factor, double lowFreqFactor, double highFreqFactor,
                          double originalMaxPositions) {
    public enum Type { NONE, LINEAR, LLAMA3 }

    public static final RopeScaling NONE = new RopeScaling(Type.NONE, 1, 1, 1, 1);

    public RopeScaling {
        if (!(factor > 0)) throw new IllegalArgumentException("rope scaling factor must be > 0, got " + factor);
        if (type == Type.LLAMA3 && !(highFreqFactor > lowFreqFactor && originalMaxPositions > 0)) {
            throw new IllegalArgumentException("llama3 rope scaling needs high_freq_factor > low_freq_factor and "
                    + "original_max_position_embeddings > 0, got " + highFreqFactor + ", " + lowFreqFactor + ", " + originalMaxPositions);
        }
    }

    /** Parses the scaling object (null or JSON null means none); {@code where} names the file for errors. */
    static RopeScaling parse(JsonNode node, String where) {
        if (node == null || node.isNull()) return NONE;
        JsonNode t = node.has("rope_type") ? node.get("rope_type") : node.get("type");
        String type = t == null || t.isNull() ? "default" : t.asText();
        try {
            return switch (type) {
                case "default" -> NONE;
                case "linear" -> new RopeScaling(Type.LINEAR, number(node, "factor", where), 1, 1, 1);
                case "llama3" -> new RopeScaling(Type.LLAMA3, number(node, "factor", where),
                        number(node, "low_freq_factor", where), number(node, "high_freq_factor", where),
                        number(node, "original_max_position_embeddings", where));
                default -> throw new ConfigException(where + ": rope scaling type '" + type
                        + "' is not supported (supported: default, linear, llama3)");
            };
        } catch (IllegalArgumentException e) {
            throw new ConfigException(where + ": " + e.getMessage());
        }
    }

    private static double number(JsonNode node, String key, String where) {
        JsonNode v = node.get(key);
        if (v == null || !v.isNumber()) throw new ConfigException(where + ": rope scaling needs a number '" + key + "'");
        return v.asDouble();
    }

    /**
     * The inverse frequency of each rotary pair i (0 ≤ i < headDim/2) after scaling, computed as
     * transformers does: in float32 from theta^(2i/d), then rescaled.
     */
    public float[] inverseFrequencies(double theta, int headDim) {
        int half = headDim / 2;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            // inv_freq[i] = 1 / theta^(2i/d)  (torch computes the exponent in float32, the power in float32)
            float exponent = (float) (2 * i) / headDim;
            inv[i] = (float) (1.0 / (float) Math.pow(theta, exponent));
        }
        switch (type) {
            case NONE -> { }
            case LINEAR -> {
                // linear: inv_freq / factor (equivalently positions / factor)
                for (int i = 0; i < half; i++) inv[i] = (float) (inv[i] / factor);
            }
            case LLAMA3 -> {
                double lowWavelen = originalMaxPositions / lowFreqFactor;
                double highWavelen = originalMaxPositions / highFreqFactor;
                for (int i = 0; i < half; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowWavelen) {
                        // long wavelengths: inv_freq / factor
                        inv[i] = (float) (inv[i] / factor);
                    } else if (wavelen >= highWavelen) {
                        // medium: smooth = (orig/wavelen - low) / (high - low); (1-smooth)·inv/factor + smooth·inv
                        double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                        inv[i] = (float) ((1 - smooth) * inv[i] / factor + smooth * inv[i]);
                    }
                }
            }
        }
        return inv;
    }
}
