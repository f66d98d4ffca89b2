package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.Params;

import java.util.List;

/** Reads per-model numbers out of the resolved parameters. */
final class Weights {
    private Weights() {}

    /** The named per-model parameter of every model, in config order. */
    static float[] of(MergeInputs in, String name) {
        float[] w = new float[in.models().size()];
        for (int i = 0; i < w.length; i++) w[i] = (float) in.params().get(i).number(name);
        return w;
    }

    /** The named per-model parameter of the given model indices. */
    static float[] of(MergeInputs in, int[] idx, String name) {
        float[] w = new float[idx.length];
        for (int i = 0; i < idx.length; i++) w[i] = (float) in.params().get(idx[i]).number(name);
        return w;
    }

    /** The named per-model parameter of the given model indices, from the resolved parameters. */
    static float[] of(List<Params> params, int[] idx, String name) {
        float[] w = new float[idx.length];
        for (int i = 0; i < idx.length; i++) w[i] = (float) params.get(idx[i]).number(name);
        return w;
    }

    /** Indices 0..n-1 except {@code skip}. */
    static int[] allBut(int n, int skip) {
        return java.util.stream.IntStream.range(0, n).filter(i -> i != skip).toArray();
    }

    /** Left-to-right float32 sum. */
    static float sum(float[] w) {
        float s = 0f;
        for (float x : w) s += x;
        return s;
    }
}
