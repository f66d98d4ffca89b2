package dev.mergeforge.model;

/**
 * Rotary position embedding in transformers' "rotate half" layout (Su et al. 2021,
 * arXiv 2104.09864): for pair i of a head, x[i] and x[i + d/2] rotate by angle pos·inv_freq[i].
 */
final class Rope {
    private final float[] invFreq;
    private final int headDim;

    Rope(ModelConfig c) {
        this.headDim = c.headDim();
        this.invFreq = c.ropeScaling().inverseFrequencies(c.ropeTheta(), c.headDim());
    }

    /** Rotates x [tokens, heads·d] in place; token t sits at position pos0 + t. */
    void apply(float[] x, int tokens, int heads, int pos0) {
        int half = headDim / 2, width = heads * headDim;
        float[] cos = new float[half], sin = new float[half];
        for (int t = 0; t < tokens; t++) {
            int pos = pos0 + t;
            for (int i = 0; i < half; i++) {
                // angle = pos·inv_freq[i], in float32 as transformers computes it
                float a = (float) pos * invFreq[i];
                cos[i] = (float) Math.cos(a);
                sin[i] = (float) Math.sin(a);
            }
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
