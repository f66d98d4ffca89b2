package dev.mergeforge.calib;

import dev.mergeforge.model.AbsSumObserver;

import java.util.Map;
import java.util.TreeMap;

/**
 * The AIM statistic (Nobari et al. 2025, arXiv 2502.02421, §3): for every module owning a
 * weight except embeddings, s[j] = mean over all calibration tokens of |x_j|, x the module's
 * input. Activations are float32; the per-channel sums are kept in float64 so the result does
 * not depend on token order, block order or thread count, and is then rounded to float32. A GPU
 * forward pass sums on the device in the same order and hands over the sums ({@link #acceptAbsSums}).
 */
public final class ActMeanStats implements AbsSumObserver {
    private final Map<String, double[]> sums = new TreeMap<>();
    private final Map<String, Long> tokens = new TreeMap<>();

    @Override
    public synchronized void accept(String weightName, float[] x, int offset, int n, int width) {
        double[] s = sums(weightName, width);
        // s[j] += Σ_t |x[t, j]|
        for (int t = 0; t < n; t++) {
            int row = offset + t * width;
            for (int j = 0; j < width; j++) s[j] += Math.abs(x[row + j]);
        }
        tokens.merge(weightName, (long) n, Long::sum);
    }

    @Override
    public synchronized void acceptAbsSums(String weightName, double[] absSums, long n) {
        double[] s = sums(weightName, absSums.length);
        // s[j] += Σ_t |x[t, j]|, summed elsewhere
        for (int j = 0; j < s.length; j++) s[j] += absSums[j];
        tokens.merge(weightName, n, Long::sum);
    }

    private double[] sums(String weightName, int width) {
        double[] s = sums.computeIfAbsent(weightName, k -> new double[width]);
        if (s.length != width) {
            throw new IllegalStateException(weightName + ": input width changed from " + s.length + " to " + width);
        }
        return s;
    }

    /** Number of tokens seen by the named module (0 if none). */
    public synchronized long tokens(String weightName) { return tokens.getOrDefault(weightName, 0L); }

    /** Modules that saw no token (MoE experts the router never chose), in sorted order: their statistic is zeros. */
    public synchronized java.util.List<String> unreached() {
        return tokens.entrySet().stream().filter(e -> e.getValue() == 0).map(Map.Entry::getKey).toList();
    }

    /** mean|x| per input channel, keyed by weight name in sorted order. */
    public synchronized Map<String, float[]> means() {
        Map<String, float[]> out = new TreeMap<>();
        sums.forEach((name, s) -> {
            long n = tokens.get(name);
            float[] m = new float[s.length];
            // s[j] = Σ|x_j| / tokens; zeros for an expert no token reached (see unreached())
            if (n > 0) for (int j = 0; j < s.length; j++) m[j] = (float) (s[j] / n);
            out.put(name, m);
        });
        return out;
    }
}
