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
}
