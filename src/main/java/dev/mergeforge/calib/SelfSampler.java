package dev.mergeforge.calib;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.model.Decoding;
import dev.mergeforge.model.LlamaModel;

import java.util.SplittableRandom;

/**
 * Task-agnostic calibration data when none is given (docs/calibration.md, "Calibration data"): the base model samples
 * its own text, temperature 1, from BOS (or EOS when the model has no BOS). Block b draws from
 * its own random stream split off {@code seed}, so the blocks depend only on (model, seed).
 */
public final class SelfSampler {
    private SelfSampler() {}

    public static TokenBlocks sample(LlamaModel model, int samples, int seqLen, long seed) {
        int start = model.bosTokenId() >= 0 ? model.bosTokenId() : model.config().eosTokenId();
        if (start < 0) {
            throw new ConfigException(model.name() + "/config.json: names neither bos_token_id nor eos_token_id, so the model "
                    + "cannot sample its own calibration data; give a data file");
        }
        SplittableRandom root = new SplittableRandom(seed);
        int[][] blocks = new int[samples][seqLen];
        for (int b = 0; b < samples; b++) {
            SplittableRandom rnd = root.split();
            int[] ids = blocks[b];
            ids[0] = start;
            Decoding d = model.startDecoding(seqLen);
            float[] logits = d.append(ids, 0, 1);
            for (int t = 1; t < seqLen; t++) {
                ids[t] = draw(logits, rnd.nextDouble());
                if (t + 1 < seqLen) logits = d.append(ids, t, 1);
            }
        }
        return new TokenBlocks(blocks, seqLen, "sampled from " + model.name() + " (seed " + seed + ")");
    }

    /** Inverse-CDF draw from softmax(logits) with u uniform in [0, 1). */
    static int draw(float[] logits, double u) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (float l : logits) sum += Math.exp(l - max);
        double target = u * sum, acc = 0;
        for (int i = 0; i < logits.length; i++) {
            acc += Math.exp(logits[i] - max);
            if (acc > target) return i;
        }
        return logits.length - 1;
    }
}
