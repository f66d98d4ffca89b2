package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.io.SafetensorsFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * KV-cached decoding (greedy evaluation, self-sampled calibration data) of every family gives
 * transformers' logits at every position: prompt of 5 tokens, then one token at a time, which
 * exercises windows, per-layer rope bases, learned positions and routing at positions > 0.
 */
class ArchDecodingTest {
    private static Parallel par;

    @BeforeAll static void start() { par = new Parallel(2); }

    @AfterAll static void stop() { par.shutdown(); }

    static String[] families() { return ArchFixtures.FAMILIES; }

    @ParameterizedTest
    @MethodSource("families")
    void incrementalDecodingMatchesTransformers(String family) {
        try (SafetensorsFile ref = SafetensorsFile.open(ArchFixtures.dir(family).resolve("reference.safetensors"));
             LlamaModel model = LlamaModel.open(ArchFixtures.dir(family), par, true)) {
            int[] seq = ArchFixtures.inputIds(ref)[1];
            float[] logits = Zoo.floats(ref.tensor("logits"));
            int vocab = model.config().vocabSize(), len = seq.length;
            double max = 0;
            for (int i = len * vocab; i < 2 * len * vocab; i++) max = Math.max(max, Math.abs(logits[i]));
            Decoding d = model.startDecoding(len);
            float[] last = d.append(seq, 0, 5);
            for (int t = 4; t < len; t++) {
                if (t > 4) last = d.append(seq, t, 1);
                double worst = 0;
                for (int v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(last[v] - logits[(len + t) * vocab + v]));
                assertTrue(worst <= 1e-4 * max, family + " position " + t + ": |diff| " + worst);
            }
        }
    }
}
