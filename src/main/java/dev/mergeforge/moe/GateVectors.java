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

    /** rows[layer][expert·hidden + j]. */
    static float[][] compute(MoeConfig cfg, LlamaModel base, TextTokenizer tok, long seed) {
        int layers = base.config().layers(), hd = base.config().hiddenSize(), experts = cfg.experts().size();
        float[][] rows = new float[layers][experts * hd];
        if (cfg.gateMode().equals("random")) {
            // independent standard normal entries (mergekit draws torch.randn; our values come from the seed)
            Random r = new Random(seed);
            for (float[] row : rows) for (int i = 0; i < row.length; i++) row[i] = (float) r.nextGaussian();
            return rows;
        }
        for (int e = 0; e < experts; e++) {
            MoeConfig.Expert x = cfg.experts().get(e);
            double[][] v = side(cfg.gateMode(), base, tok, x.positivePrompts());
            if (!x.negativePrompts().isEmpty()) {
                double[][] neg = side(cfg.gateMode(), base, tok, x.negativePrompts());
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
}
