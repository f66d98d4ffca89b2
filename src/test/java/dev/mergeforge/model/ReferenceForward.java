package dev.mergeforge.model;

import java.util.HashMap;
import java.util.Map;

/**
 * The Llama-family forward pass written out plainly in double, straight from the papers and
 * transformers' modeling code: the oracle for {@link LlamaModel}. Also records the AIM statistic
 * (mean |input| per channel of every weight-owning module but the embedding).
 */
public final class ReferenceForward {
    final TinyModel m;
    final Map<String, double[]> absSum = new HashMap<>();
    final Map<String, Long> count = new HashMap<>();

    public ReferenceForward(TinyModel m) { this.m = m; }

    private void hook(String name, double[][] x) {
        double[] s = absSum.computeIfAbsent(name, k -> new double[x[0].length]);
        for (double[] row : x) for (int j = 0; j < row.length; j++) s[j] += Math.abs(row[j]);
        count.merge(name, (long) x.length, Long::sum);
    }

    double[] mean(String name) {
        double[] s = absSum.get(name).clone();
        for (int j = 0; j < s.length; j++) s[j] /= count.get(name);
        return s;
    }

    /** logits[t][v] of one sequence. */
    public double[][] logits(int[] ids) {
        int n = ids.length, hd = m.hidden;
        double[][] h = new double[n][hd];
        double[] emb = m.w("model.embed_tokens.weight");
        for (int t = 0; t < n; t++) for (int j = 0; j < hd; j++) h[t][j] = emb[ids[t] * hd + j];
        for (int l = 0; l < m.layers; l++) {
            String p = "model.layers." + l + ".";
            hook(p + "input_layernorm.weight", h);
            double[][] x = norm(h, m.w(p + "input_layernorm.weight"));
            hook(p + "self_attn.q_proj.weight", x);
            hook(p + "self_attn.k_proj.weight", x);
            hook(p + "self_attn.v_proj.weight", x);
            double[][] q = linear(x, p + "self_attn.q_proj"), k = linear(x, p + "self_attn.k_proj"), v = linear(x, p + "self_attn.v_proj");
            rotate(q, m.heads);
            rotate(k, m.kv);
            double[][] att = new double[n][m.heads * m.headDim];
            for (int head = 0; head < m.heads; head++) {
                int g = head / (m.heads / m.kv);
                for (int t = 0; t < n; t++) {
                    double[] w = new double[n];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= t; j++) {
                        if (m.window > 0 && t - j >= m.window) { w[j] = Double.NEGATIVE_INFINITY; continue; }
                        double s = 0;
                        for (int i = 0; i < m.headDim; i++) s += q[t][head * m.headDim + i] * k[j][g * m.headDim + i];
                        w[j] = s / Math.sqrt(m.headDim);
                        max = Math.max(max, w[j]);
                    }
                    double z = 0;
                    for (int j = 0; j <= t; j++) { w[j] = Math.exp(w[j] - max); z += w[j]; }
                    for (int j = 0; j <= t; j++) {
                        for (int i = 0; i < m.headDim; i++) att[t][head * m.headDim + i] += w[j] / z * v[j][g * m.headDim + i];
                    }
                }
            }
            hook(p + "self_attn.o_proj.weight", att);
            add(h, linear(att, p + "self_attn.o_proj"));
            hook(p + "post_attention_layernorm.weight", h);
            x = norm(h, m.w(p + "post_attention_layernorm.weight"));
            hook(p + "mlp.gate_proj.weight", x);
            hook(p + "mlp.up_proj.weight", x);
            double[][] gate = linear(x, p + "mlp.gate_proj"), up = linear(x, p + "mlp.up_proj");
            for (int t = 0; t < n; t++) for (int j = 0; j < m.inter; j++) gate[t][j] = gate[t][j] / (1 + Math.exp(-gate[t][j])) * up[t][j];
            hook(p + "mlp.down_proj.weight", gate);
            add(h, linear(gate, p + "mlp.down_proj"));
        }
        hook("model.norm.weight", h);
        double[][] x = norm(h, m.w("model.norm.weight"));
        hook("lm_head.weight", x);
        return linear(x, m.tied ? "model.embed_tokens" : "lm_head");
    }

    private double[][] linear(double[][] x, String prefix) {
        double[] w = m.w(prefix + ".weight"), b = m.w(prefix + ".bias");
        int in = x[0].length, out = w.length / in;
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++) {
            for (int o = 0; o < out; o++) {
                double s = b == null ? 0 : b[o];
                for (int i = 0; i < in; i++) s += x[t][i] * w[o * in + i];
                y[t][o] = s;
            }
        }
        return y;
    }

    private double[][] norm(double[][] h, double[] g) {
        double[][] y = new double[h.length][h[0].length];
        for (int t = 0; t < h.length; t++) {
            double ms = 0;
            for (double v : h[t]) ms += v * v;
            double r = 1 / Math.sqrt(ms / h[t].length + m.eps);
            for (int j = 0; j < h[t].length; j++) y[t][j] = g[j] * h[t][j] * r;
        }
        return y;
    }

    private static void add(double[][] h, double[][] d) {
        for (int t = 0; t < h.length; t++) for (int j = 0; j < h[t].length; j++) h[t][j] += d[t][j];
    }

    /** Frequency of rotary pair i, with the Llama 3.1 or linear rescaling. */
    double invFreq(int i) {
        double f = Math.pow(m.theta, -2.0 * i / m.headDim);
        return switch (m.rope) {
            case "none" -> f;
            case "linear" -> f / m.factor;
            case "llama3" -> {
                double wavelen = 2 * Math.PI / f;
                if (wavelen < m.origMax / m.high) yield f;
                if (wavelen > m.origMax / m.low) yield f / m.factor;
                double smooth = (m.origMax / wavelen - m.low) / (m.high - m.low);
                yield (1 - smooth) * f / m.factor + smooth * f;
            }
            default -> throw new IllegalArgumentException(m.rope);
        };
    }

    private void rotate(double[][] x, int heads) {
        int d = m.headDim, half = d / 2;
        for (int t = 0; t < x.length; t++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < half; i++) {
                    double a = t * invFreq(i), x1 = x[t][h * d + i], x2 = x[t][h * d + i + half];
                    x[t][h * d + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
                    x[t][h * d + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
                }
            }
        }
    }
}
