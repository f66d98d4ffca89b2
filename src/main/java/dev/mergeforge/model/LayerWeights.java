package dev.mergeforge.model;

/**
 * One decoder layer's weights in float32, row-major as stored ([out, in] for projections).
 * Biases are null when the checkpoint has none. Only one of these is resident at a time while
 * blocks are carried through the model layer by layer (a device forward pass uploads it).
 */
public record LayerWeights(int index, float[] inputNorm, float[] q, float[] qBias, float[] k, float[] kBias,
                           float[] v, float[] vBias, float[] o, float[] oBias, float[] postNorm,
                           float[] gate, float[] gateBias, float[] up, float[] upBias, float[] down, float[] downBias) {

    public static String prefix(int layer) { return "model.layers." + layer + "."; }

    /** Reads and converts layer {@code i}, checking every shape against the config. */
    static LayerWeights load(WeightSource w, ModelConfig c, int i) {
        String p = prefix(i);
        int h = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), f = c.intermediateSize();
        return new LayerWeights(i,
                Floats32.read(w.tensor(p + "input_layernorm.weight"), h),
                Floats32.read(w.tensor(p + "self_attn.q_proj.weight"), qd, h), bias(w, p + "self_attn.q_proj.bias", qd),
                Floats32.read(w.tensor(p + "self_attn.k_proj.weight"), kvd, h), bias(w, p + "self_attn.k_proj.bias", kvd),
                Floats32.read(w.tensor(p + "self_attn.v_proj.weight"), kvd, h), bias(w, p + "self_attn.v_proj.bias", kvd),
                Floats32.read(w.tensor(p + "self_attn.o_proj.weight"), h, qd), bias(w, p + "self_attn.o_proj.bias", h),
                Floats32.read(w.tensor(p + "post_attention_layernorm.weight"), h),
                Floats32.read(w.tensor(p + "mlp.gate_proj.weight"), f, h), bias(w, p + "mlp.gate_proj.bias", f),
                Floats32.read(w.tensor(p + "mlp.up_proj.weight"), f, h), bias(w, p + "mlp.up_proj.bias", f),
                Floats32.read(w.tensor(p + "mlp.down_proj.weight"), h, f), bias(w, p + "mlp.down_proj.bias", h));
    }

    private static float[] bias(WeightSource w, String name, int n) {
        return w.contains(name) ? Floats32.read(w.tensor(name), n) : null;
    }

    /** Bytes of float32 this layer holds (for memory budgeting). */
    long bytes() {
        long n = 0;
        for (float[] a : new float[][] {inputNorm, q, qBias, k, kBias, v, vBias, o, oBias, postNorm, gate, gateBias, up, upBias, down, downBias}) {
            if (a != null) n += 4L * a.length;
        }
        return n;
    }
}
