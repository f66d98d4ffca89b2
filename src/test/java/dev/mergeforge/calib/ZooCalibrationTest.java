package dev.mergeforge.calib;

import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.model.Zoo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The AIM statistic of the zoo's base model matches the reference computed with PyTorch hooks. */
class ZooCalibrationTest {
    @Test
    void actMeanMatchesReference(@TempDir Path tmp) {
        Path zoo = Zoo.dir();
        Calibrator.Settings s = Calibrator.Settings.defaults().withSamples(16).withThreads(2).withCacheDir(tmp.resolve("cache"));
        StatsFile stats = Calibrator.run(zoo.resolve("base"), zoo.resolve("data/general_calib_blocks.jsonl"), s);
        assertEquals("128", stats.metadata().get(StatsFile.SEQ_LEN));
        assertEquals("16", stats.metadata().get(StatsFile.SAMPLES));
        try (SafetensorsFile ref = SafetensorsFile.open(zoo.resolve("reference/act_mean_base.safetensors"))) {
            assertEquals(ref.names().stream().sorted().toList(), stats.vectors().keySet().stream().toList());
            for (String n : ref.names()) {
                float[] expect = ref.tensor(n).data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
                float[] got = stats.vectors().get(n);
                assertEquals(expect.length, got.length, n);
                for (int j = 0; j < got.length; j++) assertEquals(expect[j], got[j], 1e-5, n + "[" + j + "]");
            }
        }
        // a second run with the same model, data and settings comes from the cache file
        Path cached;
        try (var files = java.nio.file.Files.list(tmp.resolve("cache"))) {
            cached = files.findFirst().orElseThrow();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        long before = cached.toFile().lastModified();
        StatsFile again = Calibrator.run(zoo.resolve("base"), zoo.resolve("data/general_calib_blocks.jsonl"), s);
        assertEquals(before, cached.toFile().lastModified());
        assertEquals(stats.metadata(), again.metadata());
        for (Map.Entry<String, float[]> e : stats.vectors().entrySet()) assertArrayEquals(e.getValue(), again.vectors().get(e.getKey()));
    }

    @Test
    void textDataTokenizesToTheZooBlocks() {
        Path zoo = Zoo.dir();
        TokenBlocks pre = CalibrationData.load(zoo.resolve("data/general_calib_blocks.jsonl"), null, 1, 16, 0);
        TokenBlocks text;
        try (TextTokenizer tok = TextTokenizer.open(zoo.resolve("base"))) {
            text = CalibrationData.load(zoo.resolve("data/general_calib.txt"), tok, 1, 16, 128);
        }
        assertEquals(16, pre.samples());
        assertEquals(128, pre.seqLen());
        for (int b = 0; b < 16; b++) assertArrayEquals(pre.blocks()[b], text.blocks()[b], "block " + b);
        assertEquals(pre.fingerprint(), text.fingerprint());
        assertTrue(Files.isRegularFile(zoo.resolve("base/tokenizer.json")));
    }
}
