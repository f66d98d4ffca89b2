package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.calib.ActMeanStats;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Experts see only the tokens routed to them: with a router of zeros every token's probabilities
 * tie, top-2 picks experts 0 and 1, so those two see every token (their statistic equals the
 * router's, which sees every token) and experts 2 and 3 none (zeros, listed as unreached).
 */
class MoeRoutingTest {
    @TempDir Path dir;

    @Test
    void expertsNoTokenReachedGetZerosAndANote() throws IOException {
        Path src = ArchFixtures.dir("mixtral");
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        byte[] st = Files.readAllBytes(src.resolve("model.safetensors"));
        ByteBuffer bb = ByteBuffer.wrap(st).order(ByteOrder.LITTLE_ENDIAN);
        int hlen = (int) bb.getLong(0);
        JsonNode h = new ObjectMapper().readTree(new String(st, 8, hlen, StandardCharsets.UTF_8));
        for (int l = 0; l < 2; l++) {
            JsonNode off = h.get("model.layers." + l + ".block_sparse_moe.gate.weight").get("data_offsets");
            Arrays.fill(st, 8 + hlen + off.get(0).asInt(), 8 + hlen + off.get(1).asInt(), (byte) 0);
        }
        Files.write(dir.resolve("model.safetensors"), st);
        Parallel par = new Parallel(2);
        try (SafetensorsFile ref = SafetensorsFile.open(src.resolve("reference.safetensors"));
             LlamaModel model = LlamaModel.open(dir, par, false)) {
            ActMeanStats stats = new ActMeanStats();
            model.hiddenStates(ArchFixtures.inputIds(ref), stats);
            Map<String, float[]> means = stats.means();
            for (int l = 0; l < 2; l++) {
                String p = "model.layers." + l + ".block_sparse_moe.";
                float[] router = means.get(p + "gate.weight");
                for (int e = 0; e < 2; e++) {
                    assertArrayEquals(router, means.get(p + "experts." + e + ".w1.weight"), p + e + " saw every token");
                    assertEquals(48, stats.tokens(p + "experts." + e + ".w3.weight"));
                }
                for (int e = 2; e < 4; e++) {
                    for (String w : List.of("w1", "w2", "w3")) {
                        String n = p + "experts." + e + "." + w + ".weight";
                        assertEquals(0, stats.tokens(n), n);
                        for (float v : means.get(n)) assertEquals(0f, v, n + " is zeros, not NaN");
                        assertTrue(stats.unreached().contains(n), n + " is reported unreached");
                    }
                }
            }
            assertEquals(12, stats.unreached().size(), stats.unreached().toString());
        } finally {
            par.shutdown();
        }
    }

    @Test
    void regmeanAveragesAnExpertNoTokenReachedInsteadOfZeroingIt() throws IOException {
        Path base = dir.resolve("base");
        Files.createDirectories(base);
        expertsNoTokenReachedGetZerosAndANote();   // writes the zero-router Mixtral into dir
        Files.move(dir.resolve("config.json"), base.resolve("config.json"));
        Files.move(dir.resolve("model.safetensors"), base.resolve("model.safetensors"));
        Path ft = ArchFixtures.copy(base, dir.resolve("ft"), 0.05);
        Path ids = dir.resolve("ids.jsonl");
        try (SafetensorsFile ref = SafetensorsFile.open(ArchFixtures.dir("mixtral").resolve("reference.safetensors"))) {
            StringBuilder b = new StringBuilder();
            for (int[] s : ArchFixtures.inputIds(ref)) b.append(new ObjectMapper().writeValueAsString(Map.of("input_ids", s))).append('\n');
            Files.writeString(ids, b);
        }
        Path cfg = dev.mergeforge.run.MergeFixtures.yaml(dir, "rm.yml", """
                merge_method: regmean
                models:
                  - {model: %1$s, parameters: {weight: 1.0}}
                  - {model: %2$s, parameters: {weight: 1.0}}
                calibration: {data: %3$s, samples: 2, seq_len: 24}
                dtype: float32
                """.formatted(base, ft, ids));
        var r = dev.mergeforge.run.MergeFixtures.cli("merge", cfg.toString(), dir.resolve("out").toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        try (SafetensorsFile out = SafetensorsFile.open(dir.resolve("out/model.safetensors"));
             SafetensorsFile a = SafetensorsFile.open(base.resolve("model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(ft.resolve("model.safetensors"))) {
            String n = "model.layers.1.block_sparse_moe.experts.3.w2.weight";
            float[] o = Zoo.floats(out.tensor(n)), x = Zoo.floats(a.tensor(n)), y = Zoo.floats(b.tensor(n));
            // (x + y) / 2, not zeros
            for (int i = 0; i < o.length; i++) assertEquals((x[i] + y[i]) / 2, o[i], 1e-6f, n);
            String reached = "model.layers.1.block_sparse_moe.experts.0.w2.weight";
            float[] p = Zoo.floats(out.tensor(reached)), q = Zoo.floats(a.tensor(reached)), z = Zoo.floats(b.tensor(reached));
            double off = 0;
            for (int i = 0; i < p.length; i++) off = Math.max(off, Math.abs(p[i] - (q[i] + z[i]) / 2));
            assertTrue(off > 1e-6, "a reached expert is solved with its Grams, not averaged");
        }
    }

    @Test
    void moeLayoutsWeCannotRunAreRefusedNamingTheKey() throws IOException {
        ObjectMapper json = new ObjectMapper();
        var c = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(ArchFixtures.dir("qwen3_moe").resolve("config.json").toFile());
        c.putArray("mlp_only_layers").add(0);
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.fromJson(c, "q/config.json"));
        assertTrue(e.getMessage().startsWith("q/config.json: ") && e.getMessage().contains("mlp_only_layers"), e.getMessage());
        c.putArray("mlp_only_layers");
        c.put("num_experts_per_tok", 5);
        e = assertThrows(ConfigException.class, () -> ModelConfig.fromJson(c, "q/config.json"));
        assertTrue(e.getMessage().contains("num_experts_per_tok 5"), e.getMessage());
    }
}
