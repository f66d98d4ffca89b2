package dev.mergeforge.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How output tensors are split into shards of at most {@code maxShardBytes} (greedy, in write
 * order, a tensor larger than the limit gets a shard of its own), named as transformers names
 * them: {@code model.safetensors} alone, else {@code model-0000i-of-0000n.safetensors} plus
 * {@code model.safetensors.index.json}.
 */
public record ShardPlan(List<List<SafetensorsWriter.Entry>> shards, List<String> fileNames) {

    public static ShardPlan of(List<SafetensorsWriter.Entry> entries, long maxShardBytes) {
        List<List<SafetensorsWriter.Entry>> shards = new ArrayList<>();
        List<SafetensorsWriter.Entry> cur = new ArrayList<>();
        long size = 0;
        for (SafetensorsWriter.Entry e : entries) {
            if (!cur.isEmpty() && size + e.byteSize() > maxShardBytes) {
                shards.add(cur);
                cur = new ArrayList<>();
                size = 0;
            }
            cur.add(e);
            size += e.byteSize();
        }
        if (!cur.isEmpty() || shards.isEmpty()) shards.add(cur);
        List<String> names = new ArrayList<>();
        int n = shards.size();
        for (int i = 0; i < n; i++) {
            names.add(n == 1 ? "model.safetensors" : String.format("model-%05d-of-%05d.safetensors", i + 1, n));
        }
        return new ShardPlan(shards, names);
    }

    /** Total bytes of all shard files (headers included). */
    public long totalFileBytes() {
        long t = 0;
        for (List<SafetensorsWriter.Entry> s : shards) t += SafetensorsWriter.fileSize(s, Map.of("format", "pt"));
        return t;
    }

    /** Writes model.safetensors.index.json when there is more than one shard. */
    public void writeIndex(Path dir) throws IOException {
        if (shards.size() <= 1) return;
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        long total = 0;
        Map<String, String> map = new LinkedHashMap<>();
        for (int i = 0; i < shards.size(); i++) {
            for (SafetensorsWriter.Entry e : shards.get(i)) {
                total += e.byteSize();
                map.put(e.name(), fileNames.get(i));
            }
        }
        root.putObject("metadata").put("total_size", total);
        ObjectNode wm = root.putObject("weight_map");
        map.forEach(wm::put);
        Files.writeString(dir.resolve("model.safetensors.index.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }
}
