package dev.mergeforge.calib;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.model.ForwardPassTest;
import dev.mergeforge.model.TinyModel;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CalibratorTest {
    private static Path tinyModel(Path dir) throws IOException {
        TinyModel m = ForwardPassTest.llama();
        return m.write(dir.resolve("model"), DType.F32);
    }

    private static Path idsFile(Path dir, int vocab) throws IOException {
        int[][] seqs = ForwardPassTest.sequences(vocab, 3, 8, 8, 8);
        List<String> rows = new ArrayList<>();
        for (int[] s : seqs) rows.add("{\"input_ids\": " + java.util.Arrays.toString(s) + "}");
        Path f = dir.resolve("ids.jsonl");
        Files.write(f, rows);
        return f;
    }

    @Test
    void writesAStatsFileThatReadsBack(@TempDir Path dir) throws IOException {
        Path model = tinyModel(dir);
        Path data = idsFile(dir, 20);
        Path out = Calibrator.calibrate(model, data, Calibrator.Settings.defaults().withThreads(2), dir.resolve("stats.safetensors"));
        StatsFile s = StatsFile.read(out);
        assertEquals("act_mean", s.metadata().get(StatsFile.STAT));
        assertEquals("3", s.metadata().get(StatsFile.SAMPLES));
        assertEquals("8", s.metadata().get(StatsFile.SEQ_LEN));
        assertEquals(model.toAbsolutePath().normalize().toString(), s.metadata().get(StatsFile.MODEL));
        assertEquals(64, s.metadata().get(StatsFile.FINGERPRINT).length());
        assertEquals(2 * 9 + 2, s.vectors().size());
        assertEquals(24, s.vectors().get("model.layers.1.self_attn.o_proj.weight").length);
        assertEquals(16, s.vectors().get("lm_head.weight").length);
        for (float[] v : s.vectors().values()) for (float x : v) assertTrue(x > 0 && Float.isFinite(x));
    }

    @Test
    void cacheKeyFollowsModelDataAndSettings(@TempDir Path dir) throws IOException {
        Path model = tinyModel(dir);
        Calibrator.Settings s = Calibrator.Settings.defaults();
        String k = Calibrator.cacheKey(model, "data:abc:8", s);
        assertEquals(k, Calibrator.cacheKey(model, "data:abc:8", s));
        assertNotEquals(k, Calibrator.cacheKey(model, "data:abd:8", s));
        assertNotEquals(k, Calibrator.cacheKey(model, "data:abc:8", s.withSamples(7)));
        // CPU and CUDA statistics agree only to rounding: kept apart; GPUs of one machine share
        Calibrator.Settings cuda0 = new Calibrator.Settings(s.samples(), s.seqLen(), s.seed(), s.threads(), null, "cuda:0");
        Calibrator.Settings cuda1 = new Calibrator.Settings(s.samples(), s.seqLen(), s.seed(), s.threads(), null, "cuda:1");
        assertNotEquals(k, Calibrator.cacheKey(model, "data:abc:8", cuda0));
        assertEquals(Calibrator.cacheKey(model, "data:abc:8", cuda0), Calibrator.cacheKey(model, "data:abc:8", cuda1));
        Files.setLastModifiedTime(model.resolve("model.safetensors"), FileTime.fromMillis(12345));
        assertNotEquals(k, Calibrator.cacheKey(model, "data:abc:8", s));
    }

    @Test
    void selfSampledDataDependsOnlyOnTheSeed(@TempDir Path dir) throws IOException {
        Path model = tinyModel(dir);
        Calibrator.Settings s = Calibrator.Settings.defaults().withSamples(2).withSeqLen(6).withThreads(1);
        StatsFile a = Calibrator.run(model, null, s), b = Calibrator.run(model, null, s.withThreads(2));
        StatsFile c = Calibrator.run(model, null, s.withSeed(43));
        assertEquals(a.metadata().get(StatsFile.FINGERPRINT), b.metadata().get(StatsFile.FINGERPRINT));
        assertNotEquals(a.metadata().get(StatsFile.FINGERPRINT), c.metadata().get(StatsFile.FINGERPRINT));
        assertTrue(a.metadata().get("data").contains("sampled"), a.metadata().get("data"));
        for (Map.Entry<String, float[]> e : a.vectors().entrySet()) assertArrayEquals(e.getValue(), b.vectors().get(e.getKey()), e.getKey());
    }

    @Test
    void drawFollowsTheSoftmax() {
        // softmax([0, ln 3]) = [1/4, 3/4]
        float[] logits = {0f, (float) Math.log(3)};
        assertEquals(0, SelfSampler.draw(logits, 0.0));
        assertEquals(0, SelfSampler.draw(logits, 0.2499));
        assertEquals(1, SelfSampler.draw(logits, 0.2501));
        assertEquals(1, SelfSampler.draw(logits, 0.9999));
    }

    @Test
    void statsFileRefusesNonVectorTensors(@TempDir Path dir) {
        Path f = dir.resolve("bad.safetensors");
        new SafetensorsWriter(f, List.of(new SafetensorsWriter.Entry("x.weight", DType.F32, Shape.of(2, 2))), Map.of()).close();
        CheckpointException e = assertThrows(CheckpointException.class, () -> StatsFile.read(f));
        assertTrue(e.getMessage().contains("x.weight"), e.getMessage());
    }
}
