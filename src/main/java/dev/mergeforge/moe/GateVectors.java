package dev.mergeforge.moe;

import dev.mergeforge.config.MoeConfig;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TextTokenizer;

import java.util.List;
import java.util.Random;

/**
 * The router rows of a mixture (mergekit-moe's gate modes, docs/moe.md): for each layer and
 * expert a vector of width hidden; a token's router logit for an expert is its dot product with
 * the layer's input. Prompts are tokenized with the base model's tokenizer, BOS first when the
 * model has one.
 */
final class GateVectors {
    private GateVectors() {}

    /** rows[layer][expert·hidden + j] for the config's routed experts. */
    static float[][] compute(MoeConfig cfg, LlamaModel base, TextTokenizer tok, long seed) {
        return compute(cfg.gateMode(), cfg.experts(), base, tok, new Random(seed));
    }

    /**
     * Routers for the routed experts and, when the config has one, the shared expert's one-row gate
     * (mergekit-moe computes both the same way from each list's prompts): [0] the routers, [1] the
     * shared gates or null. Random rows of the shared gate are drawn after the routers' from the same seed.
     */
    static float[][][] computeAll(MoeConfig cfg, LlamaModel base, TextTokenizer tok, long seed) {
        Random r = new Random(seed);
        float[][] routers = compute(cfg.gateMode(), cfg.experts(), base, tok, r);
        float[][] shared = cfg.sharedExperts().isEmpty() ? null : compute(cfg.gateMode(), cfg.sharedExperts(), base, tok, r);
        return new float[][][] {routers, shared};
    }

    /** rows[layer][expert·hidden + j] for one list of experts; random rows come from {@code r}. */
    static float[][] compute(String mode, List<MoeConfig.Expert> list, LlamaModel base, TextTokenizer tok, Random r) {
        int layers = base.config().layers(), hd = base.config().hiddenSize(), experts = list.size();
        float[][] rows = new float[layers][experts * hd];
        if (mode.equals("random")) {
            // independent standard normal entries (mergekit draws torch.randn; our values come from the seed)
            for (float[] row : rows) for (int i = 0; i < row.length; i++) row[i] = (float) r.nextGaussian();
            return rows;
        }
        for (int e = 0; e < experts; e++) {
            MoeConfig.Expert x = list.get(e);
            double[][] v = side(mode, base, tok, x.positivePrompts());
            if (!x.negativePrompts().isEmpty()) {
                double[][] neg = side(mode, base, tok, x.negativePrompts());
                // v = positive − negative
                for (int l = 0; l < layers; l++) for (int j = 0; j < hd; j++) v[l][j] -= neg[l][j];
            }
            for (int l = 0; l < layers; l++) {
                double[] n = normalised(v[l]);
                for (int j = 0; j < hd; j++) rows[l][e * hd + j] = (float) n[j];
            }
        }
        return rows;
    }

    /** One side's vector per layer: the hidden modes' mean over prompts, or cheap_embed's normalised embedding sum. */
    private static double[][] side(String mode, LlamaModel m, TextTokenizer tok, List<String> prompts) {
        int layers = m.config().layers(), hd = m.config().hiddenSize();
        double[][] acc = new double[layers][hd];
        for (String p : prompts) {
            int[] ids = ids(m, tok, p);
            if (mode.equals("cheap_embed")) {
                // Σ over prompts and tokens of the token embeddings, the same for every layer
                float[] h = m.embed(ids, 0, ids.length);
                for (int l = 0; l < layers; l++) for (int t = 0; t < ids.length; t++) for (int j = 0; j < hd; j++) acc[l][j] += h[t * hd + j];
                continue;
            }
            float[][] in = m.layerInputs(ids);
            for (int l = 0; l < layers; l++) {
                if (mode.equals("hidden_avg")) {
                    // the mean over the prompt's tokens of layer l's input
                    for (int t = 0; t < ids.length; t++) for (int j = 0; j < hd; j++) acc[l][j] += (double) in[l][t * hd + j] / ids.length;
                } else {
                    // the last token's input to layer l
                    for (int j = 0; j < hd; j++) acc[l][j] += in[l][(ids.length - 1) * hd + j];
                }
            }
        }
        if (mode.equals("cheap_embed")) {
            for (int l = 0; l < layers; l++) acc[l] = normalised(acc[l]);
        } else {
            // the mean over prompts
            for (double[] a : acc) for (int j = 0; j < hd; j++) a[j] /= prompts.size();
        }
        return acc;
    }

    /** [bos] + the prompt's tokens. */
    static int[] ids(LlamaModel m, TextTokenizer tok, String prompt) {
        int[] t = tok.encode(prompt);
        int bos = m.bosTokenId();
        if (bos < 0 && t.length == 0) {
            throw new dev.mergeforge.errors.ConfigException("prompt '" + prompt + "' has no tokens and the model has no BOS; give a non-empty prompt");
        }
        if (bos < 0) return t;
        int[] out = new int[t.length + 1];
        out[0] = bos;
        System.arraycopy(t, 0, out, 1, t.length);
        return out;
    }

    /** v / max(‖v‖₂, 1e-8). */
    static double[] normalised(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        double n = Math.max(Math.sqrt(s), 1e-8);
        double[] out = new double[v.length];
        for (int j = 0; j < v.length; j++) out[j] = v[j] / n;
        return out;
    }

    /**
     * The 2-norm condition number σmax/σmin of one layer's router rows [experts, hidden] (infinite
     * when they are dependent): √(λmax/λmin) of their Gram R·Rᵀ, eigenvalues by cyclic Jacobi.
     * mergekit warns above 5: prompts too alike route tokens to too few experts.
     */
    static double condition(float[] rows, int experts, int hd) {
        double[][] g = new double[experts][experts];
        for (int a = 0; a < experts; a++) {
            for (int b = 0; b < experts; b++) {
                double s = 0;
                for (int j = 0; j < hd; j++) s += (double) rows[a * hd + j] * rows[b * hd + j];
                g[a][b] = s;
            }
        }
        for (int sweep = 0; sweep < 100; sweep++) {
            double off = 0;
            for (int p = 0; p < experts; p++) for (int q = p + 1; q < experts; q++) off += g[p][q] * g[p][q];
            if (off < 1e-30) break;
            for (int p = 0; p < experts; p++) {
                for (int q = p + 1; q < experts; q++) {
                    if (g[p][q] == 0) continue;
                    // rotate (p, q) so that g[p][q] becomes 0
                    double theta = (g[q][q] - g[p][p]) / (2 * g[p][q]);
                    double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double c = 1 / Math.sqrt(t * t + 1), sn = t * c;
                    for (int k = 0; k < experts; k++) {
                        double gp = g[k][p], gq = g[k][q];
                        g[k][p] = c * gp - sn * gq;
                        g[k][q] = sn * gp + c * gq;
                    }
                    for (int k = 0; k < experts; k++) {
                        double gp = g[p][k], gq = g[q][k];
                        g[p][k] = c * gp - sn * gq;
                        g[q][k] = sn * gp + c * gq;
                    }
                }
            }
        }
        double max = 0, min = Double.POSITIVE_INFINITY;
        for (int k = 0; k < experts; k++) {
            max = Math.max(max, g[k][k]);
            min = Math.min(min, g[k][k]);
        }
        return min <= 1e-12 * Math.max(max, 1e-300) ? Double.POSITIVE_INFINITY : Math.sqrt(max / min);
    }

    /** The layers whose router rows have a condition number above {@code threshold}. */
    static java.util.List<Integer> degenerateLayers(float[][] rows, int experts, double threshold) {
        java.util.List<Integer> out = new java.util.ArrayList<>();
        for (int l = 0; l < rows.length; l++) if (condition(rows[l], experts, rows[l].length / experts) > threshold) out.add(l);
        return out;
    }
}
