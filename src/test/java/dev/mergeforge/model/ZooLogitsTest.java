package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.io.SafetensorsFile;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The forward pass reproduces transformers' float32 logits for every zoo model. */
class ZooLogitsTest {
    @ParameterizedTest
    @ValueSource(strings = {"base", "ft_dup", "ft_swap", "ft_mirror"})
    void logitsMatchTransformers(String modelName) {
        Path zoo = Zoo.dir();
        Parallel par = new Parallel(2);
        try (SafetensorsFile ref = SafetensorsFile.open(zoo.resolve("reference/logits.safetensors"));
             LlamaModel model = LlamaModel.open(zoo.resolve(modelName), par, false)) {
            long[] ids = Zoo.longs(ref.tensor("input_ids"));
            float[] expect = Zoo.floats(ref.tensor(modelName + ".logits"));
            int rows = (int) ref.tensor("input_ids").shape().dims()[0], len = ids.length / rows;
            int[][] seqs = new int[rows][len];
            for (int b = 0; b < rows; b++) for (int t = 0; t < len; t++) seqs[b][t] = (int) ids[b * len + t];
            float[][] got = model.logits(seqs);
            int vocab = model.config().vocabSize();
            double worst = 0;
            for (int b = 0; b < rows; b++) {
                for (int i = 0; i < len * vocab; i++) worst = Math.max(worst, Math.abs(got[b][i] - expect[b * len * vocab + i]));
            }
            assertEquals(0, worst, 1e-4, modelName + " max |logit difference|");
        } finally {
            par.shutdown();
        }
    }
}
