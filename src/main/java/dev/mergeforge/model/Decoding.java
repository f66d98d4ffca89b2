package dev.mergeforge.model;

/**
 * Incremental decoding of one sequence with a key/value cache: {@link #append} feeds new tokens
 * and returns the logits of the last one. Costs O(new tokens × context) per call instead of
 * recomputing the prefix. Open the model with keepLayers for speed.
 */
public final class Decoding {
    private final LlamaModel model;
    private final ModelConfig c;
    private final int capacity;
    private final float[][] kCache, vCache;
    private int length;

    Decoding(LlamaModel model, int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("decoding capacity must be > 0, got " + capacity);
        this.model = model;
        this.c = model.config();
        this.capacity = capacity;
        this.kCache = new float[c.layers()][capacity * c.kvDim()];
        this.vCache = new float[c.layers()][capacity * c.kvDim()];
    }

    public int length() { return length; }

    /** Feeds ids[from, from+n) after what is already decoded; returns the logits [vocab] of the last. */
    public float[] append(int[] ids, int from, int n) {
        if (n <= 0) throw new IllegalArgumentException("append needs at least one token");
        if (length + n > capacity) {
            throw new IllegalArgumentException("decoding capacity " + capacity + " exceeded (" + length + " + " + n + ")");
        }
        int hd = c.hiddenSize();
        float[] h = model.embed(ids, from, n, length);
        DecoderLayer.Scratch s = new DecoderLayer.Scratch(c, n);
        for (int i = 0; i < c.layers(); i++) {
            model.decoderLayer().forward(model.layerTensors(i), h, n, length, kCache[i], vCache[i], s, ActivationObserver.NONE);
        }
        length += n;
        // only the last position's row is normed and projected
        float[] last = new float[hd];
        System.arraycopy(h, (n - 1) * hd, last, 0, hd);
        float[] normed = new float[hd];
        model.finalNorm(last, 1, normed, ActivationObserver.NONE);
        return model.logits(normed, 1);
    }
}
