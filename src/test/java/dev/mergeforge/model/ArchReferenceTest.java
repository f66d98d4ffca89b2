package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.calib.ActMeanStats;
import dev.mergeforge.io.SafetensorsFile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every family's forward pass against transformers' own float32 outputs on the same checkpoint:
 * logits and each layer's hidden states to 1e-4 of the largest reference value, and the AIM
 * statistic (mean |input| of every module but the embeddings, experts over their routed tokens)
 * to 1e-5 of each vector's largest value, with exactly the reference's set of names.
 */
class ArchReferenceTest {
    private static Parallel par;

    @BeforeAll static void start() { par = new Parallel(2); }

    @AfterAll static void stop() { par.shutdown(); }

    static String[] families() { return ArchFixtures.FAMILIES; }

    @ParameterizedTest
    @MethodSource("families")
    void logitsHiddenStatesAndActMeansMatchTransformers(String family) {
        try (SafetensorsFile ref = SafetensorsFile.open(ArchFixtures.dir(family).resolve("reference.safetensors"));
             LlamaModel model = LlamaModel.open(ArchFixtures.dir(family), par, false)) {
            int[][] seqs = ArchFixtures.inputIds(ref);
            int len = seqs[0].length, hd = model.config().hiddenSize(), layers = model.config().layers();
            float[][][] hidden = new float[layers][seqs.length][];
            ActMeanStats stats = new ActMeanStats();
            float[][] normed = model.hiddenStates(seqs, stats, (i, b, h) -> hidden[i][b] = h.clone());
            // transformers' last hidden state is after the final norm
            hidden[layers - 1] = normed;
            for (int k = 0; k < layers; k++) {
                float[] expect = Zoo.floats(ref.tensor("hidden." + k));
                close(family + " hidden." + k, expect, hidden[k], len * hd, 1e-4);
            }
            float[] logits = Zoo.floats(ref.tensor("logits"));
            int vocab = model.config().vocabSize();
            float[][] got = new float[seqs.length][];
            for (int b = 0; b < seqs.length; b++) got[b] = model.logits(normed[b], len);
            close(family + " logits", logits, got, len * vocab, 1e-4);

            Map<String, float[]> means = stats.means();
            TreeSet<String> expectNames = new TreeSet<>();
            for (String n : ref.names()) if (n.startsWith("act_mean.")) expectNames.add(n.substring("act_mean.".length()));
            assertEquals(expectNames, new TreeSet<>(means.keySet()), family + ": modules with a statistic");
            for (String n : expectNames) {
                float[] e = Zoo.floats(ref.tensor("act_mean." + n)), g = means.get(n);
                assertEquals(e.length, g.length, n);
                double max = 0, worst = 0;
                for (int j = 0; j < e.length; j++) {
                    max = Math.max(max, Math.abs(e[j]));
                    worst = Math.max(worst, Math.abs(e[j] - g[j]));
                }
                assertTrue(worst <= 1e-5 * Math.max(max, 1e-30) || worst == 0, family + " act_mean." + n + ": |diff| " + worst + " vs max " + max);
            }
        }
    }

    /** max |got − expect| ≤ tol · max |expect| over every sequence's rows. */
    private static void close(String what, float[] expect, float[][] got, int perSeq, double tol) {
        double max = 0, worst = 0;
        for (int b = 0; b < got.length; b++) {
            assertEquals(perSeq, got[b].length, what + " length");
            for (int i = 0; i < perSeq; i++) {
                float e = expect[b * perSeq + i];
                max = Math.max(max, Math.abs(e));
                worst = Math.max(worst, Math.abs(got[b][i] - e));
            }
        }
        assertTrue(worst <= tol * max, what + ": max |diff| " + worst + " > " + tol + " · " + max);
    }
}
