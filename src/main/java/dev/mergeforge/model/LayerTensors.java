package dev.mergeforge.model;

import dev.mergeforge.arch.Architecture;
import dev.mergeforge.arch.Components;
import dev.mergeforge.arch.Role;
import dev.mergeforge.arch.WeightSpec;
import dev.mergeforge.tensor.TensorView;

import java.util.EnumMap;
import java.util.Map;

/**
 * One decoder layer's weights in float32 by {@link Role}, as its family's descriptor lists them:
 * projections row-major [out, in] (a Conv1D (in, out) weight is transposed on load), biases
 * where the checkpoint has them, experts' weights per expert. Also the weight names the forward
 * pass reports module inputs under.
 */
final class LayerTensors {
    final int index;
    private final Map<Role, float[]> weights = new EnumMap<>(Role.class);
    private final Map<Role, float[]> biases = new EnumMap<>(Role.class);
    private final Map<Role, String> names = new EnumMap<>(Role.class);
    /** [expert][0 gate, 1 up, 2 down] */
    final float[][][] experts;
    final String[][] expertNames;

    private LayerTensors(int index, int experts) {
        this.index = index;
        this.experts = new float[experts][3][];
        this.expertNames = new String[experts][3];
    }

    float[] w(Role r) { return weights.get(r); }

    float[] b(Role r) { return biases.get(r); }

    boolean has(Role r) { return weights.containsKey(r); }

    /** The stored name of the weight with this role (what the observer is told). */
    String name(Role r) { return names.get(r); }

    /** Reads and converts layer {@code i}, checking every shape against the config. */
    static LayerTensors load(WeightSource src, ModelConfig c, int i) { return load(src, c, i, null); }

    /**
     * {@link #load(WeightSource, ModelConfig, int)} into arrays from {@code spare} where it has them
     * (null: new arrays); every element of every array is written.
     */
    static LayerTensors load(WeightSource src, ModelConfig c, int i, SpareArrays spare) {
        Architecture a = c.arch();
        LayerTensors t = new LayerTensors(i, c.variant().experts());
        for (WeightSpec s : a.layer()) {
            if (s.role().isExpert()) {
                int slot = switch (s.role()) {
                    case EXPERT_GATE -> 0;
                    case EXPERT_UP -> 1;
                    default -> 2;
                };
                for (int e = 0; e < c.variant().experts(); e++) {
                    String n = a.layerName(i, s, e);
                    t.experts[e][slot] = read(src, n, dims(c, s.role()), a.storedInOut(), spare);
                    t.expertNames[e][slot] = n;
                }
                continue;
            }
            String n = a.layerName(i, s, -1);
            long[] d = dims(c, s.role());
            t.names.put(s.role(), n);
            t.weights.put(s.role(), read(src, n, d, a.storedInOut() && d.length == 2, spare));
            String bias = n.substring(0, n.length() - ".weight".length()) + ".bias";
            if (src.contains(bias)) t.biases.put(s.role(), Floats32.read(src.tensor(bias), take(spare, d[0]), d[0]));
        }
        return t;
    }

    private static float[] read(WeightSource src, String name, long[] d, boolean transposed, SpareArrays spare) {
        TensorView v = src.tensor(name);
        if (!transposed) return Floats32.read(v, take(spare, d), d);
        float[] io = Floats32.read(v, take(spare, d), d[1], d[0]);
        int out = (int) d[0], in = (int) d[1];
        float[] oi = take(spare, d);
        // W[o][i] = stored[i][o]
        for (int r = 0; r < in; r++) for (int o = 0; o < out; o++) oi[o * in + r] = io[r * out + o];
        if (spare != null) spare.give(io);
        return oi;
    }

    /** An array for a tensor of these dims: from spare where given, else new (null when too large: Floats32.read says why). */
    private static float[] take(SpareArrays spare, long... d) {
        long n = 1;
        for (long x : d) n *= x;
        if (n > Integer.MAX_VALUE - 8) return null;
        return spare == null ? new float[(int) n] : spare.take((int) n);
    }

    /** Hands every array of this layer to {@code spare}; the layer must not be used afterwards. */
    void giveArrays(SpareArrays spare) {
        weights.values().forEach(spare::give);
        biases.values().forEach(spare::give);
        for (float[][] e : experts) for (float[] x : e) spare.give(x);
        weights.clear();
        biases.clear();
        for (float[][] e : experts) java.util.Arrays.fill(e, null);
    }

    /** The [out, in] (or [width]) shape config.json implies for a role. */
    static long[] dims(ModelConfig c, Role r) {
        long h = c.hiddenSize(), q = c.qDim(), kv = c.kvDim(), f = c.intermediateSize(), fe = c.variant().expertIntermediate();
        long fs = c.variant().sharedIntermediate();
        boolean perHead = c.parts().qkNorm() == Components.QkNorm.PER_HEAD;
        return switch (r) {
            case ATTN_NORM, ATTN_OUT_NORM, MLP_NORM, MLP_OUT_NORM, FINAL_NORM -> new long[] {h};
            case Q_NORM -> new long[] {perHead ? c.headDim() : q};
            case K_NORM -> new long[] {perHead ? c.headDim() : kv};
            case Q -> new long[] {q, h};
            case K, V -> new long[] {kv, h};
            case QKV -> new long[] {q + 2 * kv, h};
            case O -> new long[] {h, q};
            case GATE, UP -> new long[] {f, h};
            case GATE_UP -> new long[] {2 * f, h};
            case DOWN -> new long[] {h, f};
            case ROUTER -> new long[] {c.variant().experts(), h};
            case EXPERT_GATE, EXPERT_UP -> new long[] {fe, h};
            case EXPERT_DOWN -> new long[] {h, fe};
            case SHARED_GATE, SHARED_UP -> new long[] {fs, h};
            case SHARED_DOWN -> new long[] {h, fs};
            case SHARED_EXPERT_GATE -> new long[] {1, h};
            case EMBEDDING, POSITION_EMBEDDING, HEAD -> throw new IllegalArgumentException(r + " is not a layer weight");
        };
    }

    /** Bytes of float32 this layer holds (for memory budgeting). */
    long bytes() {
        long n = 0;
        for (float[] x : weights.values()) n += 4L * x.length;
        for (float[] x : biases.values()) n += 4L * x.length;
        for (float[][] e : experts) for (float[] x : e) if (x != null) n += 4L * x.length;
        return n;
    }
}
