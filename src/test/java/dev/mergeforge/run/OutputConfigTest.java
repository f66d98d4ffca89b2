package dev.mergeforge.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** config.json rewriting on hand-written configs: nested language-model configs, index lists, DeepSeek's dense count. */
class OutputConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aMultimodalConfigGetsItsTextStackAndEveryDtypeKeyRewritten() throws Exception {
        JsonNode in = JSON.readTree("""
                {"model_type": "gemma3", "torch_dtype": "bfloat16",
                 "text_config": {"model_type": "gemma3_text", "num_hidden_layers": 3, "sliding_window_pattern": 3, "dtype": "bfloat16"},
                 "vision_config": {"num_hidden_layers": 2, "torch_dtype": "bfloat16", "layer_norm_eps": 1e-6}}
                """);
        ObjectNode out = OutputConfig.rewrite(in, List.of(2, 0, 1, 2), DType.F32);
        assertEquals("float32", out.get("torch_dtype").asText());
        assertEquals("float32", out.get("dtype").asText());
        JsonNode text = out.get("text_config");
        assertEquals("float32", text.get("dtype").asText());
        assertEquals("float32", text.get("torch_dtype").asText());
        assertEquals(4, text.get("num_hidden_layers").asInt());
        // pattern 3 over 3 layers: [S, S, F]; output follows [2, 0, 1, 2]
        assertEquals("[\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\"]", text.get("layer_types").toString());
        assertEquals(2, out.get("vision_config").get("num_hidden_layers").asInt(), "the vision tower is not sliced");
        assertEquals("float32", out.get("vision_config").get("torch_dtype").asText());
        assertEquals("bfloat16", in.get("torch_dtype").asText(), "the input config is not modified");
    }

    @Test
    void indexListsArePerLayerListsAndTheDenseCountFollowTheSources() throws Exception {
        JsonNode in = JSON.readTree("""
                {"num_hidden_layers": 4, "mlp_only_layers": [0, 3], "no_rope_layers": [1, 0, 1, 1], "eos_token_id": [5, 6, 7, 8],
                 "first_k_dense_replace": 2, "moe_layer_freq": 1}
                """);
        ObjectNode out = OutputConfig.rewrite(in, List.of(0, 1, 3, 3), DType.BF16);
        assertEquals("[0,2,3]", out.get("mlp_only_layers").toString());
        assertEquals("[1,0,1,1]", out.get("no_rope_layers").toString());
        assertEquals("[5,6,7,8]", out.get("eos_token_id").toString(), "token ids are never per layer");
        assertEquals(2, out.get("first_k_dense_replace").asInt());
        assertEquals(4, out.get("num_hidden_layers").asInt());
        ConfigException e = assertThrows(ConfigException.class, () -> OutputConfig.rewrite(in, List.of(2, 0), DType.BF16));
        assertTrue(e.getMessage().contains("output layer 1 is a dense layer (source layer 0)"), e.getMessage());
        e = assertThrows(ConfigException.class, () -> OutputConfig.rewrite(in, List.of(4), DType.BF16));
        assertTrue(e.getMessage().contains("slices take layer 4 but num_hidden_layers is 4"), e.getMessage());
    }

    @Test
    void theFamilysDescriptorNamesTheImplicitPatternAndItsPerLayerLists() throws Exception {
        // Qwen2 slides only with use_sliding_window, from max_window_layers on (the same rule the forward pass reads)
        JsonNode qwen = JSON.readTree("""
                {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "num_hidden_layers": 4,
                 "use_sliding_window": true, "sliding_window": 16, "max_window_layers": 2}
                """);
        ObjectNode out = OutputConfig.rewrite(qwen, List.of(3, 0, 2), DType.BF16);
        assertEquals("[\"sliding_attention\",\"full_attention\",\"sliding_attention\"]", out.get("layer_types").toString());
        ObjectNode off = ((ObjectNode) qwen.deepCopy()).put("use_sliding_window", false);
        assertTrue(OutputConfig.rewrite(off, List.of(3, 0, 2), DType.BF16).get("layer_types") == null,
                "no sliding: every layer alike, nothing to write");
        // Gemma 2 alternates from a sliding layer 0 even with no window set; Mistral's window is on every layer
        JsonNode gemma = JSON.readTree("{\"architectures\": [\"Gemma2ForCausalLM\"], \"num_hidden_layers\": 3}");
        assertEquals("[\"full_attention\",\"sliding_attention\"]", OutputConfig.rewrite(gemma, List.of(1, 2), DType.BF16).get("layer_types").toString());
        JsonNode mistral = JSON.readTree("{\"architectures\": [\"MistralForCausalLM\"], \"num_hidden_layers\": 3, \"sliding_window\": 8}");
        assertTrue(OutputConfig.rewrite(mistral, List.of(1, 2), DType.BF16).get("layer_types") == null);
        // a per-layer list the descriptor names must have one entry per layer
        JsonNode bad = JSON.readTree("{\"architectures\": [\"Gemma2ForCausalLM\"], \"num_hidden_layers\": 3, \"layer_types\": [\"full_attention\"]}");
        ConfigException e = assertThrows(ConfigException.class, () -> OutputConfig.rewrite(bad, List.of(0), DType.BF16));
        assertTrue(e.getMessage().startsWith("config.json: layer_types has 1 entries for num_hidden_layers 3"), e.getMessage());
    }
}
