package dev.mergeforge.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.io.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Older config.json spellings give the same model, and the tokenizer config decides whether sequences start with BOS. */
class ConfigSpellingsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path dir;

    private double worstLogit(Path model, SafetensorsFile ref) {
        Parallel par = new Parallel(2);
        try (LlamaModel m = LlamaModel.open(model, par, false)) {
            float[] e = Zoo.floats(ref.tensor("logits"));
            float[][] g = m.logits(ArchFixtures.inputIds(ref));
            double worst = 0;
            for (int b = 0; b < g.length; b++) for (int i = 0; i < g[b].length; i++) worst = Math.max(worst, Math.abs(g[b][i] - e[b * g[b].length + i]));
            return worst;
        } finally {
            par.shutdown();
        }
    }

    @Test
    void gptNeoxWithTransformers4KeysIsTheSameModel() throws IOException {
        Path src = ArchFixtures.dir("gpt_neox");
        Files.copy(src.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        ObjectNode c = (ObjectNode) JSON.readTree(src.resolve("config.json").toFile());
        c.remove("rope_parameters");
        c.put("rotary_pct", 0.5);
        c.put("rotary_emb_base", 10000);
        Files.writeString(dir.resolve("config.json"), c.toString());
        try (SafetensorsFile ref = SafetensorsFile.open(src.resolve("reference.safetensors"))) {
            assertTrue(worstLogit(dir, ref) < 1e-4, "rotary_pct + rotary_emb_base");
            c.put("rotary_emb_base", 2);
            Files.writeString(dir.resolve("config.json"), c.toString());
            double moved = worstLogit(dir, ref);
            assertTrue(moved > 1e-3, "the base is read, not assumed: " + moved);
        }
    }

    @Test
    void gemmaWindowsWithoutLayerTypesFollowTheFamilysRule() throws IOException {
        for (String family : new String[] {"gemma2", "gemma3"}) {
            Path src = ArchFixtures.dir(family), d = Files.createDirectories(dir.resolve(family));
            Files.copy(src.resolve("model.safetensors"), d.resolve("model.safetensors"));
            ObjectNode c = (ObjectNode) JSON.readTree(src.resolve("config.json").toFile());
            // the fixtures' layer_types are [sliding, full]: Gemma 2's even layers, Gemma 3 with a pattern of 2
            c.remove("layer_types");
            c.put("sliding_window_pattern", 2);
            Files.writeString(d.resolve("config.json"), c.toString());
            try (SafetensorsFile ref = SafetensorsFile.open(src.resolve("reference.safetensors"))) {
                assertTrue(worstLogit(d, ref) < 1e-4, family + " without layer_types");
                c.put("sliding_window", 2);
                Files.writeString(d.resolve("config.json"), c.toString());
                assertTrue(worstLogit(d, ref) > 1e-3, family + ": the window is applied");
            }
        }
    }

    @Test
    void bosComesFromConfigUnlessTheTokenizerSaysNone() throws IOException {
        Path src = ArchFixtures.dir("llama3");
        Files.copy(src.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        Parallel par = new Parallel(1);
        try {
            for (String tc : new String[] {null, "{\"bos_token\": \"<s>\"}", "{\"bos_token\": null}", "{\"bos_token\": \"<s>\", \"add_bos_token\": false}"}) {
                if (tc != null) Files.writeString(dir.resolve("tokenizer_config.json"), tc);
                try (LlamaModel m = LlamaModel.open(dir, par, false)) {
                    assertEquals(tc == null || !tc.contains("null") && !tc.contains("false") ? 1 : -1, m.bosTokenId(), String.valueOf(tc));
                }
            }
        } finally {
            par.shutdown();
        }
    }
}
