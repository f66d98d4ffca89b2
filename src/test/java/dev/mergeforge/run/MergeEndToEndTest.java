package dev.mergeforge.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Whole merges through the CLI on generated checkpoints, checked value by value against double references. */
class MergeEndToEndTest {
    @TempDir Path dir;

    /** Rounds a double to the output dtype the way the writer does (via float32). */
    static double round(double v, DType d) {
        float f = (float) v;
        return switch (d) {
            case F32 -> f;
            case BF16 -> dev.mergeforge.tensor.Floats.bf16ToFloat(dev.mergeforge.tensor.Floats.floatToBf16(f));
            case F16 -> dev.mergeforge.tensor.Floats.f16ToFloat(dev.mergeforge.tensor.Floats.floatToF16(f));
            default -> throw new IllegalArgumentException();
        };
    }

    @ParameterizedTest
    @EnumSource(Arch.class)
    void linearMergeOfEveryArchitectureMatchesTheWeightedMeanInDouble(Arch arch) throws Exception {
        RandomModels.Family f = MergeFixtures.family(arch, DType.BF16, 2, 1, dir.resolve("models"));
        Path cfg = MergeFixtures.yaml(dir, "linear.yml", """
                merge_method: linear
                models:
                  - model: %s
                    parameters: {weight: 0.3}
                  - model: %s
                    parameters: {weight: 0.9}
                dtype: float32
                """.formatted(f.fineTunes().get(0), f.fineTunes().get(1)));
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "--backend", "java", "-q");
        assertEquals(0, r.exit(), r.err());
        try (Checkpoint a = Checkpoint.open(f.fineTunes().get(0).toString()); Checkpoint b = Checkpoint.open(f.fineTunes().get(1).toString());
             Checkpoint m = Checkpoint.open(out.toString())) {
            assertEquals(a.names().size(), m.names().size());
            for (String name : a.names()) {
                double[] x = MergeFixtures.values(a.tensor(name)), y = MergeFixtures.values(b.tensor(name)), z = MergeFixtures.values(m.tensor(name));
                assertEquals(DType.F32, m.tensor(name).dtype());
                for (int i = 0; i < x.length; i++) {
                    double ref = (0.3 * x[i] + 0.9 * y[i]) / 1.2;
                    assertEquals(ref, z[i], 1e-6 * Math.max(1, Math.abs(ref)), name + "[" + i + "]");
                }
            }
            assertEquals("float32", m.config().path("torch_dtype").asText());
            assertEquals(a.config().path("model_type").asText(), m.config().path("model_type").asText());
        }
        for (String file : List.of("config.json", "tokenizer.json", "mergeforge_config.yml", "README.md")) {
            assertTrue(Files.isRegularFile(out.resolve(file)), file + " written");
        }
        assertTrue(Files.readString(out.resolve("README.md")).contains("linear"));
    }

    @Test
    void shardedInputsAndOutputsRoundTripEveryTensor() throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.F16, 1, 3, dir.resolve("models"));
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", f.fineTunes().getFirst());
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "--out-shard-size", "20KB", "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        assertTrue(Files.exists(out.resolve("model.safetensors.index.json")));
        try (Checkpoint in = Checkpoint.open(f.fineTunes().getFirst().toString()); Checkpoint m = Checkpoint.open(out.toString())) {
            for (String name : in.names()) {
                // one model with weight 1 is the identity: the f16 bytes come back unchanged
                assertEquals(in.tensor(name).dtype(), m.tensor(name).dtype());
                assertEquals(-1, in.tensor(name).data().mismatch(m.tensor(name).data()), name);
            }
        }
    }

    @Test
    void dryRunPrintsThePlanAndWritesNothing() throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.QWEN2, DType.BF16, 2, 1, dir.resolve("models"));
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", f.fineTunes().get(0), f.fineTunes().get(1));
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "--dry-run");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("bytes to read") && r.out().contains("bytes to write") && r.out().contains("peak working memory"), r.out());
        assertFalse(Files.exists(out));
        try (var s = Files.list(dir)) {
            assertEquals(2, s.count(), "only models/ and cfg.yml: nothing written");
        }
    }

    @Test
    void eventsJsonPrintsOneObjectPerLineFromStartToDone() throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.MISTRAL, DType.BF16, 1, 1, dir.resolve("models"));
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", f.fineTunes().getFirst());
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), dir.resolve("out").toString(), "--events", "json");
        assertEquals(0, r.exit(), r.err());
        ObjectMapper json = new ObjectMapper();
        List<String> kinds = new ArrayList<>();
        int tensors = 0;
        for (String line : r.out().strip().split("\n")) {
            JsonNode n = json.readTree(line);
            kinds.add(n.get("event").asText());
            if (n.get("event").asText().equals("tensor")) tensors++;
        }
        assertEquals("start", kinds.getFirst());
        assertEquals("done", kinds.getLast());
        try (Checkpoint c = Checkpoint.open(f.fineTunes().getFirst().toString())) {
            assertEquals(c.names().size(), tensors);
        }
    }

    @Test
    void aFailedMergeReportsAnErrorEventAndLeavesNoOutput() throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 1, 1, dir.resolve("models"));
        Path other = RandomModels.builder().arch(Arch.LLAMA).hidden(64).intermediate(48).layers(3).heads(4).vocab(64)
                .maxPositions(64).seed(1).write(dir.resolve("models/wide"));
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", f.fineTunes().getFirst(), other);
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "--events", "json");
        assertEquals(1, r.exit());
        assertTrue(r.out().contains("\"event\":\"error\"") && r.out().contains("shape"), r.out());
        assertEquals(1, r.err().strip().lines().count(), "one line on stderr: " + r.err());
        assertTrue(r.err().contains("model.embed_tokens.weight") || r.err().contains("shape"), r.err());
        assertFalse(Files.exists(out));
    }

    /** Copies a model dir and writes a bf16 NaN into element 3 of one tensor of the copy. */
    static Path withNaN(Path model, Path copy, String tensor) throws Exception {
        Files.createDirectories(copy);
        try (var files = Files.list(model)) {
            for (Path f : files.toList()) Files.copy(f, copy.resolve(f.getFileName()));
        }
        Path st = copy.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(st);
        long n = java.nio.ByteBuffer.wrap(all, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = new ObjectMapper().readTree(new String(all, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8));
        int at = (int) (8 + n + header.get(tensor).get("data_offsets").get(0).asLong() + 2 * 3);
        all[at] = (byte) 0xC0;     // bf16 0x7FC0: a quiet NaN, little-endian
        all[at + 1] = (byte) 0x7F;
        Files.write(st, all);
        return copy;
    }

    @Test
    void aNaNInAnInputIsAnErrorNamingTheTensorUnlessAllowed() throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 1, 1, dir.resolve("models"));
        String tensor = "model.layers.1.mlp.up_proj.weight";
        Path bad = withNaN(f.fineTunes().getFirst(), dir.resolve("models/bad"), tensor);
        byte[] before = Files.readAllBytes(bad.resolve("model.safetensors"));
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", f.base(), bad);
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains(tensor) && r.err().contains("element 3") && r.err().contains("--allow-nonfinite"), r.err());
        assertFalse(Files.exists(out));
        MergeFixtures.Run ok = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q", "--allow-nonfinite");
        assertEquals(0, ok.exit(), ok.err());
        assertTrue(Float.isNaN((float) MergeFixtures.values(out, tensor)[3]));
        assertEquals(-1, java.util.Arrays.mismatch(before, Files.readAllBytes(bad.resolve("model.safetensors"))), "input unchanged");
    }
}
