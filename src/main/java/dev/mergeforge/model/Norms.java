package dev.mergeforge.model;

import dev.mergeforge.arch.Components;

/** The norms of the supported families, row by row over [rows, width]; out may be x itself. */
final class Norms {
    private Norms() {}

    static void apply(Components.Norm kind, float[] x, int rows, int width, float[] g, float[] b, double eps, float[] out) {
        switch (kind) {
            case RMS -> rms(x, rows, width, g, eps, out, false);
            case RMS_ONE_PLUS -> rms(x, rows, width, g, eps, out, true);
            case LAYER_NORM -> layer(x, rows, width, g, b, eps, out);
        }
    }

    /**
     * out[t] = x[t] / sqrt(mean_j x[t,j]² + eps) ⊙ g (Llama), or ⊙ (1 + g) (Gemma); the mean of
     * squares taken in double.
     */
    static void rms(float[] x, int rows, int width, float[] g, double eps, float[] out, boolean onePlus) {
        for (int t = 0; t < rows; t++) {
            int o = t * width;
            double ss = 0;
            for (int j = 0; j < width; j++) ss += (double) x[o + j] * x[o + j];
            float r = (float) (1.0 / Math.sqrt((float) (ss / width) + eps));
            if (onePlus) for (int j = 0; j < width; j++) out[o + j] = (x[o + j] * r) * (1f + g[j]);
            else for (int j = 0; j < width; j++) out[o + j] = g[j] * (x[o + j] * r);
        }
    }

    /** out[t] = (x[t] − mean) / sqrt(var + eps) ⊙ g + b, mean and (biased) variance in double. */
    static void layer(float[] x, int rows, int width, float[] g, float[] b, double eps, float[] out) {
        for (int t = 0; t < rows; t++) {
            int o = t * width;
            double s = 0;
            for (int j = 0; j < width; j++) s += x[o + j];
            double mean = s / width, v = 0;
            for (int j = 0; j < width; j++) v += (x[o + j] - mean) * (x[o + j] - mean);
            double r = 1.0 / Math.sqrt(v / width + eps);
            for (int j = 0; j < width; j++) out[o + j] = (float) ((x[o + j] - mean) * r) * g[j] + (b == null ? 0f : b[j]);
        }
    }
}
