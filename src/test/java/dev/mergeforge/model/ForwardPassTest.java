package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.calib.ActMeanStats;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The float32 forward pass and its activation hooks against a plain double reference, on tiny random models. */
public class ForwardPassTest {
    static final Parallel PAR = new Parallel(2);

    @AfterAll
    static void stop() { PAR.shutdown(); }

    /** Llama 3 style: GQA, explicit head_dim ≠ hidden/heads, llama3 rope scaling, tied embeddings, bf16 storage. */
    public static TinyModel llama() {
        TinyModel m = new TinyModel("llama");
        m.hidden = 16; m.inter = 24; m.layers = 2; m.heads = 4; m.kv = 2; m.headDim = 6; m.vocab = 20;
        m.eps = 1e-5; m.theta = 500; m.tied = true;
        m.rope = "llama3"; m.factor = 8; m.low = 1; m.high = 4; m.origMax = 8;
        return m.build(1, false, false);
    }

    /** Mistral: sliding window shorter than the sequence, linear rope scaling, transformers-5 rope_parameters. */
    public static TinyModel mistral() {
        TinyModel m = new TinyModel("mistral");
        m.hidden = 16; m.inter = 20; m.layers = 2; m.heads = 4; m.kv = 1; m.headDim = 4; m.vocab = 24;
        m.eps = 1e-6; m.theta = 10000; m.window = 3; m.rope = "linear"; m.factor = 2;
        return m.build(2, false, true);
    }

    /** Qwen2: q/k/v biases, tied embeddings, large rope theta. */
    public static TinyModel qwen2() {
        TinyModel m = new TinyModel("qwen2");
        m.hidden = 12; m.inter = 28; m.layers = 3; m.heads = 3; m.kv = 3; m.headDim = 4; m.vocab = 18;
        m.eps = 1e-6; m.theta = 1e6; m.tied = true;
        return m.build(3, true, false);
    }

    public static int[][] sequences(int vocab, long seed, int... lengths) {
        Random r = new Random(seed);
        int[][] s = new int[lengths.length][];
        for (int b = 0; b < lengths.length; b++) {
            s[b] = new int[lengths[b]];
            for (int t = 0; t < lengths[b]; t++) s[b][t] = r.nextInt(vocab);
        }
        return s;
    }

    private void check(TinyModel tiny, Path dir, DType dtype) throws IOException {
        tiny.write(dir, dtype);
        int[][] seqs = sequences(tiny.vocab, 7, 9, 5, 13);
        ReferenceForward ref = new ReferenceForward(tiny);
        ActMeanStats stats = new ActMeanStats();
        try (LlamaModel model = LlamaModel.open(dir, PAR, false)) {
            float[][] h = model.hiddenStates(seqs, stats);
            for (int b = 0; b < seqs.length; b++) {
                float[] got = model.logits(h[b], seqs[b].length);
                double[][] expect = ref.logits(seqs[b]);
                for (int t = 0; t < seqs[b].length; t++) {
                    for (int v = 0; v < tiny.vocab; v++) {
                        assertEquals(expect[t][v], got[t * tiny.vocab + v], 1e-4, "seq " + b + " pos " + t + " token " + v);
                    }
                }
            }
        }
        Map<String, float[]> means = stats.means();
        assertEquals(ref.absSum.keySet(), means.keySet());
        assertEquals(tiny.layers * 9 + 2, means.size());
        for (String name : means.keySet()) {
            double[] expect = ref.mean(name);
            float[] got = means.get(name);
            assertEquals(expect.length, got.length, name);
            for (int j = 0; j < got.length; j++) assertEquals(expect[j], got[j], 1e-5 * Math.max(1, Math.abs(expect[j])), name + "[" + j + "]");
        }
    }

    @Test
    void llamaWithGqaLlama3RopeTiedBf16(@TempDir Path dir) throws IOException { check(llama(), dir, DType.BF16); }

    @Test
    void mistralWithSlidingWindowAndLinearRope(@TempDir Path dir) throws IOException { check(mistral(), dir, DType.F32); }

    @Test
    void qwen2WithBiases(@TempDir Path dir) throws IOException { check(qwen2(), dir, DType.F32); }

    @Test
    void kvCachedDecodingMatchesTheFullForward(@TempDir Path dir) throws IOException {
        TinyModel tiny = llama();
        tiny.write(dir, DType.F32);
        int[] seq = sequences(tiny.vocab, 11, 10)[0];
        double[][] expect = new ReferenceForward(tiny).logits(seq);
        try (LlamaModel model = LlamaModel.open(dir, PAR, true)) {
            Decoding d = model.startDecoding(seq.length);
            float[] last = d.append(seq, 0, 4);
            for (int v = 0; v < tiny.vocab; v++) assertEquals(expect[3][v], last[v], 1e-4);
            for (int t = 4; t < seq.length; t++) {
                last = d.append(seq, t, 1);
                for (int v = 0; v < tiny.vocab; v++) assertEquals(expect[t][v], last[v], 1e-4, "pos " + t);
            }
            assertEquals(seq.length, d.length());
            assertThrows(IllegalArgumentException.class, () -> d.append(seq, 0, 1));
        }
    }

    @Test
    void refusesUnsupportedModelsWithTheKeyNamed(@TempDir Path dir) throws IOException {
        TinyModel tiny = qwen2();
        tiny.config.put("hidden_act", "relu");
        tiny.write(dir, DType.F32);
        ConfigException e = assertThrows(ConfigException.class, () -> LlamaModel.open(dir, PAR, false));
        assertTrue(e.getMessage().contains("hidden_act"), e.getMessage());
        tiny.config.put("hidden_act", "silu");
        tiny.config.putObject("rope_scaling").put("type", "yarn").put("factor", 2.0);
        Files.writeString(dir.resolve("config.json"), tiny.config.toPrettyString());
        e = assertThrows(ConfigException.class, () -> LlamaModel.open(dir, PAR, false));
        assertTrue(e.getMessage().contains("yarn"), e.getMessage());
    }

    @Test
    void shardedCheckpointGivesTheSameLogits(@TempDir Path dir) throws IOException {
        TinyModel tiny = qwen2();
        Path single = tiny.write(dir.resolve("single"), DType.F32);
        Path sharded = Files.createDirectories(dir.resolve("sharded"));
        Files.copy(single.resolve("config.json"), sharded.resolve("config.json"));
        StringBuilder map = new StringBuilder();
        try (SafetensorsFile f = SafetensorsFile.open(single.resolve("model.safetensors"))) {
            List<String> names = f.names();
            for (int part = 0; part < 2; part++) {
                String shard = "model-0000" + (part + 1) + "-of-00002.safetensors";
                List<String> mine = names.subList(part * names.size() / 2, (part + 1) * names.size() / 2);
                List<SafetensorsWriter.Entry> entries = new ArrayList<>();
                for (String n : mine) entries.add(new SafetensorsWriter.Entry(n, DType.F32, f.tensor(n).shape()));
                try (SafetensorsWriter w = new SafetensorsWriter(sharded.resolve(shard), entries, Map.of())) {
                    for (String n : mine) {
                        w.slot(n).copyFrom(f.tensor(n).data());
                        map.append(map.isEmpty() ? "" : ",").append('"').append(n).append("\": \"").append(shard).append('"');
                    }
                }
            }
        }
        Files.writeString(sharded.resolve("model.safetensors.index.json"), "{\"metadata\": {}, \"weight_map\": {" + map + "}}");
        int[][] seqs = sequences(tiny.vocab, 5, 6);
        try (LlamaModel a = LlamaModel.open(single, PAR, false); LlamaModel b = LlamaModel.open(sharded, PAR, false)) {
            assertArrayEquals(a.logits(seqs)[0], b.logits(seqs)[0]);
        }
    }

    @Test
    void bosComesFromConfigUnlessTheTokenizerHasNone(@TempDir Path dir) throws IOException {
        Path m = qwen2().write(dir, DType.F32);
        try (LlamaModel model = LlamaModel.open(m, PAR, false)) {
            assertEquals(1, model.bosTokenId());
        }
        Files.writeString(m.resolve("tokenizer_config.json"), "{\"bos_token\": null, \"eos_token\": \"</s>\"}");
        try (LlamaModel model = LlamaModel.open(m, PAR, false)) {
            assertEquals(-1, model.bosTokenId());
        }
    }

    @Test
    void refusesOutOfVocabularyIds(@TempDir Path dir) throws IOException {
        TinyModel tiny = mistral();
        tiny.write(dir, DType.F32);
        try (LlamaModel model = LlamaModel.open(dir, PAR, false)) {
            ConfigException e = assertThrows(ConfigException.class, () -> model.logits(new int[][] {{1, 99}}));
            assertTrue(e.getMessage().contains("99"), e.getMessage());
        }
    }
}
