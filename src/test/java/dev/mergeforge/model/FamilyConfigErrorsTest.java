package dev.mergeforge.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Family settings we cannot run are one-line errors naming the file and the key. */
class FamilyConfigErrorsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path dir;

    private static String refused(String family, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode c = (ObjectNode) JSON.readTree(ArchFixtures.dir(family).resolve("config.json").toFile());
        edit.accept(c);
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.fromJson(c, "m/config.json"));
        assertTrue(e.getMessage().startsWith("m/config.json: ") && !e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage();
    }

    @Test
    void perLayerListsWindowsAndAttentionScalingWeDoNotRunAreRefused() throws IOException {
        assertTrue(refused("gemma2", c -> c.putArray("layer_types").add("sliding_attention")).contains("layer_types has 1 entries for 2 layers"));
        assertTrue(refused("gemma3", c -> c.putArray("layer_types").add("chunked_attention").add("full_attention"))
                .contains("layer_types[0] 'chunked_attention'"));
        assertTrue(refused("qwen3", c -> c.put("use_sliding_window", true)).contains("use_sliding_window=true"));
        assertTrue(refused("gpt2", c -> c.put("scale_attn_by_inverse_layer_idx", true)).contains("scale_attn_by_inverse_layer_idx"));
        assertTrue(refused("gpt2", c -> c.put("activation_function", "relu")).contains("activation_function 'relu'"));
        assertTrue(refused("gemma3", c -> ((ObjectNode) c.get("rope_parameters").get("sliding_attention")).put("rope_type", "linear").put("factor", 2.0))
                .contains("rope_parameters.sliding_attention"));
        assertTrue(refused("gpt2", c -> c.remove("n_layer")).contains("'n_layer'"));
    }

    @Test
    void learnedPositionsEndAtTheTable() throws IOException {
        Parallel par = new Parallel(2);
        try (LlamaModel m = LlamaModel.open(ArchFixtures.dir("gpt2"), par, false)) {
            int[] ids = new int[129];
            ConfigException e = assertThrows(ConfigException.class, () -> m.logits(new int[][] {ids}));
            assertTrue(e.getMessage().contains("position 128 is beyond the 128 learned positions"), e.getMessage());
        } finally {
            par.shutdown();
        }
    }

    @Test
    void calibrateRefusesAFamilyWithoutAForwardPassNamingTheSupportedList() throws IOException {
        Files.copy(ArchFixtures.dir("llama3").resolve("model.safetensors"), dir.resolve("model.safetensors"));
        ObjectNode c = (ObjectNode) JSON.readTree(ArchFixtures.dir("llama3").resolve("config.json").toFile());
        c.putArray("architectures").add("FooForCausalLM");
        c.put("model_type", "foo");
        Files.writeString(dir.resolve("config.json"), c.toString());
        Files.writeString(dir.resolve("ids.jsonl"), "{\"input_ids\": [1, 2, 3, 4]}\n");
        MergeFixtures.Run r = MergeFixtures.cli("calibrate", dir.toString(), "--data", dir.resolve("ids.jsonl").toString(), "--no-cache",
                "-o", dir.resolve("s.safetensors").toString());
        assertEquals(2, r.exit(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("architecture 'FooForCausalLM' (model_type foo) has no forward pass here (supported: llama, mistral, qwen2, "),
                r.err());
        assertTrue(Files.notExists(dir.resolve("s.safetensors")));
    }
}
