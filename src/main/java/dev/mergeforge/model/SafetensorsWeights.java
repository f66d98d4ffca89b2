package dev.mergeforge.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A model directory: config.json plus either model.safetensors or the shards a
 * model.safetensors.index.json lists. Every shard stays mapped (not read) until {@link #close()}.
 */
final class SafetensorsWeights implements WeightSource {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final JsonNode config;
    private final List<SafetensorsFile> files = new ArrayList<>();
    private final Map<String, SafetensorsFile> byName = new HashMap<>();

    private SafetensorsWeights(Path dir, JsonNode config) {
        this.dir = dir;
        this.config = config;
    }

    static SafetensorsWeights open(Path given) {
        Path dir = given.toAbsolutePath().normalize();
        Path cfg = dir.resolve("config.json");
        if (!Files.isRegularFile(cfg)) throw new CheckpointException(dir + ": no config.json; give a Hugging Face model directory");
        JsonNode config;
        try {
            config = JSON.readTree(cfg.toFile());
        } catch (IOException e) {
            throw new CheckpointException(cfg + ": cannot read (" + e.getMessage() + "); fix or re-download the file", e);
        }
        SafetensorsWeights w = new SafetensorsWeights(dir, config);
        try {
            Path single = dir.resolve("model.safetensors");
            Path index = dir.resolve("model.safetensors.index.json");
            if (Files.isRegularFile(single)) {
                w.add(SafetensorsFile.open(single));
            } else if (Files.isRegularFile(index)) {
                w.addShards(index);
            } else {
                throw new CheckpointException(dir + ": neither model.safetensors nor model.safetensors.index.json; "
                        + "convert the checkpoint to safetensors");
            }
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
        return w;
    }

    private void addShards(Path index) {
        JsonNode map;
        try {
            map = JSON.readTree(index.toFile()).get("weight_map");
        } catch (IOException e) {
            throw new CheckpointException(index + ": cannot read (" + e.getMessage() + ")", e);
        }
        if (map == null || !map.isObject()) throw new CheckpointException(index + ": no weight_map object; re-download the index");
        Map<String, SafetensorsFile> shards = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            String shard = it.next().getValue().asText();
            if (!shards.containsKey(shard)) {
                Path p = dir.resolve(shard);
                if (!Files.isRegularFile(p)) throw new CheckpointException(index + ": shard " + shard + " is missing; download it");
                shards.put(shard, SafetensorsFile.open(p));
            }
        }
        shards.values().forEach(this::add);
    }

    private void add(SafetensorsFile f) {
        files.add(f);
        for (String n : f.names()) byName.putIfAbsent(n, f);
    }

    @Override public JsonNode config() { return config; }

    @Override public boolean contains(String name) { return byName.containsKey(name); }

    @Override
    public TensorView tensor(String name) {
        SafetensorsFile f = byName.get(name);
        if (f == null) throw new CheckpointException(dir + ": no tensor named '" + name + "'; is this a Llama-family checkpoint?");
        return f.tensor(name);
    }

    @Override public String describe() { return dir.toString(); }

    @Override
    public void close() {
        for (SafetensorsFile f : files) f.close();
        files.clear();
    }
}
