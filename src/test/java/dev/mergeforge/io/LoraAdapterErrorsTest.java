package dev.mergeforge.io;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every adapter LoraAdapter.open refuses, each with a message naming the file, key or module. */
class LoraAdapterErrorsTest {
    @TempDir Path dir;
    static final String Q = "base_model.model.model.layers.0.self_attn.q_proj";

    /** An adapter directory with the given config and zero float32 tensors of the given shapes. */
    Path adapter(String name, String config, Map<String, long[]> tensors) throws IOException {
        Path d = Files.createDirectories(dir.resolve(name));
        if (config != null) Files.writeString(d.resolve("adapter_config.json"), config);
        List<SafetensorsWriter.Entry> es = new ArrayList<>();
        tensors.forEach((n, s) -> es.add(new SafetensorsWriter.Entry(n, DType.F32, Shape.of(s))));
        try (SafetensorsWriter w = new SafetensorsWriter(d.resolve("adapter_model.safetensors"), es, Map.of()); Arena a = Arena.ofConfined()) {
            for (SafetensorsWriter.Entry e : es) w.write(e.name(), a.allocate(e.byteSize()));
        }
        return d;
    }

    static Map<String, long[]> pair(int r) {
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put(Q + ".lora_A.weight", new long[] {r, 8});
        m.put(Q + ".lora_B.weight", new long[] {8, r});
        return m;
    }

    void fails(Path d, String... parts) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> LoraAdapter.open(d.toString()).close());
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' in: " + e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void refusals() throws IOException {
        fails(dir.resolve("missing"), "not found");
        fails(adapter("noconfig", null, pair(2)), "adapter_config.json");
        fails(adapter("badjson", "{r: 2", pair(2)), "adapter_config.json", "not valid JSON");
        fails(adapter("ia3", "{\"peft_type\": \"IA3\", \"r\": 2}", pair(2)), "IA3");
        fails(adapter("dora", "{\"r\": 2, \"use_dora\": true}", pair(2)), "DoRA");
        fails(adapter("norank", "{\"lora_alpha\": 2}", pair(2)), "r must be a positive integer");
        Map<String, long[]> prefix = new LinkedHashMap<>(Map.of("model.layers.0.q.lora_A.weight", new long[] {2, 8}));
        fails(adapter("prefix", "{\"r\": 2}", prefix), "model.layers.0.q.lora_A.weight", "base_model.model.");
        Map<String, long[]> mag = new LinkedHashMap<>(pair(2));
        mag.put(Q + ".lora_magnitude_vector.default", new long[] {8});
        fails(adapter("magnitude", "{\"r\": 2}", mag), "lora_magnitude_vector", "DoRA");
        Map<String, long[]> onlyB = new LinkedHashMap<>(Map.of(Q + ".lora_B.weight", new long[] {8, 2}));
        fails(adapter("onlyb", "{\"r\": 2}", onlyB), "q_proj", "no lora_A");
        Map<String, long[]> save = new LinkedHashMap<>(pair(2));
        save.put("base_model.model.lm_head.weight", new long[] {4, 8});
        fails(adapter("save", "{\"r\": 2, \"modules_to_save\": [\"embed_tokens\"]}", save), "lm_head", "modules_to_save");
        fails(adapter("pattern", "{\"r\": 2, \"rank_pattern\": {\"q_proj(\": 2}}", pair(2)), "q_proj(", "regular expression");
        Map<String, long[]> bias = new LinkedHashMap<>(pair(2));
        bias.put(Q + ".lora_B.bias", new long[] {7});
        fails(adapter("bias", "{\"r\": 2}", bias), "lora_B.bias", "[8]");
        Map<String, long[]> strayBias = new LinkedHashMap<>(Map.of("base_model.model.model.layers.0.mlp.up_proj.lora_B.bias", new long[] {8}));
        fails(adapter("straybias", "{\"r\": 2}", strayBias), "up_proj", "no lora_A/lora_B");
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Files.writeString(bin.resolve("adapter_config.json"), "{\"r\": 2}");
        Files.writeString(bin.resolve("adapter_model.bin"), "x");
        fails(bin, "adapter_model.bin", "safe_serialization");
    }

    @Test
    void anAdapterIsFoundInTheHuggingFaceCacheLikeAModel() throws IOException {
        Path src = adapter("src", "{\"r\": 2}", pair(2));
        Path snap = Files.createDirectories(dir.resolve("hub/models--acme--lora/snapshots/c0ffee"));
        Files.createDirectories(dir.resolve("hub/models--acme--lora/refs"));
        Files.writeString(dir.resolve("hub/models--acme--lora/refs/main"), "c0ffee");
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors")) Files.copy(src.resolve(f), snap.resolve(f));
        try (LoraAdapter a = LoraAdapter.open("acme/lora", dir.resolve("hub"))) {
            assertTrue(a.touches("model.layers.0.self_attn.q_proj.weight"));
        }
        CheckpointException e = assertThrows(CheckpointException.class, () -> LoraAdapter.open("acme/other", dir.resolve("hub")));
        assertTrue(e.getMessage().contains("acme/other"), e.getMessage());
    }

    @Test
    void targetModulesAsARegexAndAllLinear() throws IOException {
        LoraAdapter.open(adapter("regex", "{\"r\": 2, \"target_modules\": \".*self_attn\\\\.(q|v)_proj\"}", pair(2)).toString()).close();
        LoraAdapter.open(adapter("all", "{\"r\": 2, \"target_modules\": \"all-linear\"}", pair(2)).toString()).close();
        fails(adapter("regexmiss", "{\"r\": 2, \"target_modules\": \".*v_proj\"}", pair(2)), "target_modules", "q_proj");
    }
}
