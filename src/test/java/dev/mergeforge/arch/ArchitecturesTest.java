package dev.mergeforge.arch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The descriptors against the tensor names and config.json transformers writes for each family
 * (src/test/resources/archs): every stored tensor has a role, layers and pre/post weights are
 * where the names say, and the registry refuses unknown families with the supported list.
 */
class ArchitecturesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode config(String family) throws IOException {
        return JSON.readTree(Path.of("src/test/resources/archs", family, "config.json").toFile());
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2", "gpt2", "gpt_neox", "mixtral", "qwen3_moe"})
    void everyStoredTensorHasARoleAndALayer(String family) throws IOException {
        JsonNode cfg = config(family);
        Architecture a = assertInstanceOf(Architecture.class, Architectures.roles(cfg), family);
        assertTrue(a.runnable(), family);
        int layers = a.layerCount(cfg);
        assertEquals(2, layers, family + " layer count from " + a.keys().layers());
        UnknownArchitecture old = new UnknownArchitecture("(names)", null);
        List<String> pre = new ArrayList<>(), heads = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(Path.of("src/test/resources/archs", family, "model.safetensors"))) {
            for (String n : f.names()) {
                WeightSpec s = a.specOf(n);
                assertNotNull(s, family + ": no role for " + n);
                int l = a.layerOf(n);
                assertTrue(l >= -1 && l < layers, n);
                assertEquals(l >= 0, !a.pre().contains(s) && !a.post().contains(s), n + " is a layer tensor exactly when its spec is per layer");
                if (l >= 0) assertEquals(n, a.withLayer(a.withLayer(n, 7), l), n);
                // the descriptor agrees with the name conventions merges used before descriptors (same t, same slices)
                assertEquals(old.layerOf(n), l, n);
                assertEquals(old.isPre(n), a.isPre(n), n);
                if (a.isPre(n)) pre.add(n);
                if (a.isHead(n)) heads.add(n);
                assertEquals(s.role().isEmbedding(), a.isEmbedding(n), n);
            }
        }
        assertFalse(pre.isEmpty(), family + " has embeddings");
        assertTrue(pre.stream().allMatch(a::isEmbedding), family + ": pre weights are the embeddings " + pre);
        assertEquals(a.tiedHead(cfg), heads.isEmpty(), family + ": a stored head exactly when untied");
        assertEquals(family.equals("gpt2"), a.storedInOut("x.weight"), family + " stores Conv1D (in, out)");
    }

    @Test
    void configSelectsByClassThenModelType() throws IOException {
        assertEquals(Architectures.GEMMA3_TEXT, Architectures.find(config("gemma3")).orElseThrow());
        JsonNode onlyType = JSON.readTree("{\"model_type\": \"qwen3_moe\"}");
        assertEquals(Architectures.QWEN3_MOE, Architectures.find(onlyType).orElseThrow());
        // a multimodal Gemma 3 (its text tower under language_model.) is not the text family
        JsonNode vlm = JSON.readTree("{\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"model_type\": \"gemma3\"}");
        assertTrue(Architectures.find(vlm).isEmpty());
        TensorRoles r = Architectures.roles(vlm);
        assertInstanceOf(UnknownArchitecture.class, r);
        assertEquals(3, r.layerOf("language_model.model.layers.3.mlp.up_proj.weight"));
        assertTrue(r.tiedHead(vlm), "unknown Gemma variants keep Gemma's tying default");
    }

    @Test
    void modelRunningRefusesUnknownAndUnrunFamiliesNamingTheSupportedList() throws IOException {
        String list = "llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, olmo2, gpt2, gpt_neox, mixtral, qwen2_moe, qwen3_moe";
        assertEquals(list, Architectures.runnableList(), "a stable order");
        JsonNode foo = JSON.readTree("{\"architectures\": [\"FooForCausalLM\"], \"model_type\": \"foo\"}");
        ConfigException e = assertThrows(ConfigException.class, () -> Architectures.requireRunnable(foo, "m/config.json"));
        assertTrue(e.getMessage().startsWith("m/config.json: architecture 'FooForCausalLM' (model_type foo) has no forward pass here (supported: "
                + list + ")"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        JsonNode gemma = JSON.readTree("{\"architectures\": [\"GemmaForCausalLM\"], \"model_type\": \"gemma\"}");
        e = assertThrows(ConfigException.class, () -> Architectures.requireRunnable(gemma, "g"));
        assertTrue(e.getMessage().contains("'GemmaForCausalLM'"), e.getMessage());
        assertEquals(Architectures.GEMMA, Architectures.roles(gemma), "Gemma 1 still merges with its descriptor");
    }

    @Test
    void expertsAndFusedProjectionsShareInputsAsTheyRead() {
        var phi = Architectures.PHI3.layerLinearInputs(0, 0);
        assertEquals(List.of("model.layers.0.self_attn.qkv_proj.weight", "model.layers.0.self_attn.o_proj.weight",
                "model.layers.0.mlp.gate_up_proj.weight", "model.layers.0.mlp.down_proj.weight"), List.copyOf(phi.keySet()));
        var mix = Architectures.MIXTRAL.layerLinearInputs(1, 2);
        assertEquals("expert_in#1", mix.get("model.layers.1.block_sparse_moe.experts.1.w1.weight"));
        assertEquals("expert_in#1", mix.get("model.layers.1.block_sparse_moe.experts.1.w3.weight"));
        assertEquals("expert_in#0", mix.get("model.layers.1.block_sparse_moe.experts.0.w3.weight"));
        assertEquals(Role.EXPERT_DOWN, Architectures.MIXTRAL.specOf("model.layers.1.block_sparse_moe.experts.13.w2.weight").role());
        assertEquals(null, Architectures.MIXTRAL.specOf("model.layers.1.block_sparse_moe.experts.x.w2.weight"));
    }
}
