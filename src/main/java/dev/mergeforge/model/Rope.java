package dev.mergeforge.model;

/**
 * Rotary position embedding in transformers' "rotate half" layout (Su et al. 2021,
 * arXiv 2104.09864): for pair i of the rotating part of a head (its first {@code rot} dims,
 * all of them unless the family rotates partially), x[i] and x[i + rot/2] rotate by angle
 * pos·inv_freq[i]; the other dims pass through.
 */
final class Rope {
    private final float[] invFreq;
    private final int headDim;
    private final int rot;

    Rope(ModelConfig c) { this(c, c.ropeTheta(), c.ropeScaling()); }

    Rope(ModelConfig c, double theta, RopeScaling scaling) {
        this.headDim = c.headDim();
        this.rot = c.variant().rotaryDims();
        this.invFreq = scaling.inverseFrequencies(theta, rot);
    }

    /** cos and sin of the angles of position pos into cos[at..at+rot/2), sin[at..at+rot/2). */
    private void angles(int pos, float[] cos, float[] sin, int at) {
        for (int i = 0; i < rot / 2; i++) {
            // angle = pos·inv_freq[i], in float32 as transformers computes it
            float a = (float) pos * invFreq[i];
            cos[at + i] = (float) Math.cos(a);
            sin[at + i] = (float) Math.sin(a);
        }
    }

    /** {cos, sin} tables [positions, d/2] of positions 0..positions-1 (for a device forward pass; full rotation only). */
    float[][] tables(int positions) {
        int half = rot / 2;
        float[] cos = new float[positions * half], sin = new float[positions * half];
        for (int p = 0; p < positions; p++) angles(p, cos, sin, p * half);
        return new float[][] {cos, sin};
    }

    /** Rotates x [tokens, heads·d] in place; token t sits at position pos0 + t. */
    void apply(float[] x, int tokens, int heads, int pos0) {
        int half = rot / 2, width = heads * headDim;
        float[] cos = new float[half], sin = new float[half];
        for (int t = 0; t < tokens; t++) {
            angles(pos0 + t, cos, sin, 0);
            for (int h = 0; h < heads; h++) {
                int o = t * width + h * headDim;
                for (int i = 0; i < half; i++) {
                    float x1 = x[o + i], x2 = x[o + i + half];
                    // [x1, x2] -> [x1·cos − x2·sin, x2·cos + x1·sin]
                    x[o + i] = x1 * cos[i] - x2 * sin[i];
                    x[o + i + half] = x2 * cos[i] + x1 * sin[i];
                }
            }
        }
    }
}
