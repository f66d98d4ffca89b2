package dev.mergeforge.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.errors.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Where a model directory keeps its weights. In order (mergekit's rule):
 * {@code model.safetensors.index.json} (its {@code weight_map}), else {@code model.safetensors},
 * else exactly one {@code *.safetensors}. PyTorch pickles are refused with the command that
 * converts them; so is a directory with no weights.
 *
 * @param fileOf   tensor name to shard file (relative to the directory), in the index's order;
 *                 empty for a single file, whose names come from its header
 * @param files    the safetensors files, in first-use order
 * @param index    the index file, or null for a single file
 * @param metadata the index's {@code metadata} object, values as text (empty without an index)
 */
record WeightFiles(Map<String, String> fileOf, List<String> files, Path index, Map<String, String> metadata) {
    static final String INDEX = "model.safetensors.index.json";
    static final String SINGLE = "model.safetensors";
    /** One line of Python that re-saves a PyTorch checkpoint as safetensors. */
    static final String CONVERT = "python -c \"from transformers import AutoModelForCausalLM as M; "
            + "M.from_pretrained('DIR').save_pretrained('DIR-safetensors', safe_serialization=True)\"";

    WeightFiles {
        fileOf = Collections.unmodifiableMap(new LinkedHashMap<>(fileOf));
        files = List.copyOf(files);
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /** Finds the weights of the model in {@code dir}; {@code model} names it in messages. */
    static WeightFiles locate(Path dir, String model) {
        List<String> entries = list(dir);
        if (entries.contains(INDEX)) return fromIndex(dir, dir.resolve(INDEX), model);
        if (entries.contains(SINGLE)) return single(dir, SINGLE, model);
        List<String> st = entries.stream().filter(n -> n.endsWith(".safetensors")).toList();
        if (st.size() == 1) return single(dir, st.getFirst(), model);
        if (st.size() > 1) {
            throw new CheckpointException("model '" + model + "' (" + dir + ") has " + st.size() + " safetensors files "
                    + st + " but no " + INDEX + " saying which tensor is where; add the index or keep one file");
        }
        List<String> pickles = entries.stream()
                .filter(n -> n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth") || n.equals("pytorch_model.bin.index.json"))
                .toList();
        if (!pickles.isEmpty()) {
            throw new CheckpointException("model '" + model + "' (" + dir + ") has only PyTorch weights " + pickles
                    + ", which mergeforge does not read (pickles can run code); convert them once with: "
                    + CONVERT.replace("DIR", dir.toString()));
        }
        throw new CheckpointException("model '" + model + "' (" + dir + ") has no weights: no " + INDEX + ", no " + SINGLE
                + " and no *.safetensors file (found " + (entries.isEmpty() ? "nothing" : entries) + "); "
                + "download the weights or pass the directory that holds them");
    }

    private static WeightFiles single(Path dir, String file, String model) {
        if (!Files.isRegularFile(dir.resolve(file))) {
            throw new CheckpointException("model '" + model + "': " + dir.resolve(file) + " is not a readable file (a broken symlink"
                    + " is an unfinished download); download the model again");
        }
        return new WeightFiles(Map.of(), List.of(file), null, Map.of());
    }

    private static WeightFiles fromIndex(Path dir, Path index, String model) {
        JsonNode root;
        try {
            root = SafetensorsFile.JSON.readTree(Files.readString(index));
        } catch (JsonProcessingException e) {
            throw new CheckpointException(index + " is not valid JSON (" + SafetensorsFile.jsonError(e) + "); re-download it", e);
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + index + ": " + e.getMessage() + "; check its permissions", e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new CheckpointException(index + " has no \"weight_map\" object; re-download it or re-save the model");
        }
        Map<String, String> fileOf = new LinkedHashMap<>();
        LinkedHashSet<String> files = new LinkedHashSet<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(index + ": weight_map entry '" + e.getKey() + "' is not a file name; re-download the index");
            }
            String file = e.getValue().asText();
            if (files.add(file)) checkInside(dir, index, e.getKey(), file);
            fileOf.put(e.getKey(), file);
        }
        if (fileOf.isEmpty()) throw new CheckpointException(index + " has an empty weight_map; re-download it or re-save the model");
        List<String> missing = files.stream().filter(f -> !Files.isRegularFile(dir.resolve(f))).toList();
        if (!missing.isEmpty()) {
            throw new CheckpointException("model '" + model + "': " + index + " names shard(s) " + missing + " that are missing from "
                    + dir + "; download the missing shards (or re-download the model)");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        JsonNode meta = root.get("metadata");
        if (meta != null && meta.isObject()) meta.properties().forEach(m -> metadata.put(m.getKey(), m.getValue().asText()));
        return new WeightFiles(fileOf, new ArrayList<>(files), index, metadata);
    }

    /** A shard must lie inside the model directory (lexically: symlinks inside it are followed later). */
    private static void checkInside(Path dir, Path index, String tensor, String file) {
        boolean ok = !file.isEmpty() && !file.contains("\\") && !file.contains("\0");
        if (ok) {
            Path p = Path.of(file);
            ok = !p.isAbsolute() && p.getRoot() == null;
            for (Path part : p) ok &= !part.toString().equals("..");
            ok &= dir.resolve(p).normalize().startsWith(dir.normalize());
        }
        if (!ok) {
            throw new CheckpointException(index + ": weight_map sends tensor '" + tensor + "' to '" + file
                    + "', outside the model directory; refused — shard names must be plain files in the directory");
        }
    }

    private static List<String> list(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new CheckpointException("cannot list " + dir + ": " + e.getMessage() + "; check the path and its permissions", e);
        }
    }
}
