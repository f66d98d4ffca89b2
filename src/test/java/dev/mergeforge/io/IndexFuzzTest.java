package dev.mergeforge.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Property: whatever a model's model.safetensors.index.json says, opening the model and reading
 * every tensor it lists either works — every tensor from a shard inside the model directory that
 * really holds it — or fails with a one-line {@link CheckpointException}, never another exception
 * and never a read outside the directory. Seeded mutations of a real two-shard index.
 */
class IndexFuzzTest {
    static final long SEED = 777L;
    static final int TRIES = 250;
    static final ObjectMapper JSON = new ObjectMapper();
    static final JsonNodeFactory N = JsonNodeFactory.instance;
    @TempDir Path dir;

    static final String[] FILES = {"../outside.safetensors", "/etc/passwd", "", "a/../../b.safetensors", "sub/x.safetensors", ".", "..",
            "nope.safetensors", "x\u0000y", "C:\\x.safetensors", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "config.json", "model.safetensors.index.json", "./model-00001-of-00002.safetensors"};

    static JsonNode hostileValue(Random r) {
        return switch (r.nextInt(8)) {
            case 0 -> N.numberNode(r.nextInt());
            case 1 -> N.nullNode();
            case 2 -> N.objectNode().put("file", "x");
            case 3 -> N.arrayNode().add("model-00001-of-00002.safetensors");
            case 4 -> N.booleanNode(true);
            default -> N.textNode(FILES[r.nextInt(FILES.length)]);
        };
    }

    static String mutate(String valid, Random r) throws Exception {
        if (r.nextInt(6) == 0) { // raw text damage
            StringBuilder b = new StringBuilder(valid);
            int at = r.nextInt(b.length());
            if (r.nextBoolean()) b.setLength(at); else b.setCharAt(at, "{}[],:\"\\x0".charAt(r.nextInt(10)));
            return b.toString();
        }
        ObjectNode root = (ObjectNode) JSON.readTree(valid);
        ObjectNode map = (ObjectNode) root.get("weight_map");
        List<String> names = new ArrayList<>();
        map.fieldNames().forEachRemaining(names::add);
        for (int k = 1 + r.nextInt(3); k > 0; k--) {
            String name = names.get(r.nextInt(names.size()));
            switch (r.nextInt(7)) {
                case 0, 1, 2 -> map.set(name, hostileValue(r));
                case 3 -> map.remove(name);
                case 4 -> map.put("model.layers.99.ghost.weight", FILES[r.nextInt(FILES.length)]);
                case 5 -> { map.set(name + "x", map.get(name)); map.remove(name); }
                default -> root.set(r.nextBoolean() ? "weight_map" : "metadata", hostileValue(r));
            }
            if (!(root.get("weight_map") instanceof ObjectNode m)) break;
            map = m;
        }
        return JSON.writeValueAsString(root);
    }

    @Test
    void mutatedIndexesOpenCleanlyOrFailWithOneLineCheckpointException() throws Exception {
        Path model = RandomModels.builder().arch(Arch.LLAMA).hidden(16).intermediate(24).layers(2).heads(2).kvHeads(1).vocab(32)
                .maxPositions(32).dtype(DType.BF16).shards(2).seed(5).write(dir.resolve("m"));
        Files.write(dir.resolve("outside.safetensors"), Files.readAllBytes(model.resolve("model-00001-of-00002.safetensors")));
        Path index = model.resolve("model.safetensors.index.json");
        String valid = Files.readString(index);
        Random r = new Random(SEED);
        int opened = 0;
        for (int i = 0; i < TRIES; i++) {
            String text = mutate(valid, r);
            Files.writeString(index, text);
            try (Checkpoint c = Checkpoint.open(model.toString())) {
                for (String name : c.names()) c.tensor(name).data().toArray(ValueLayout.JAVA_BYTE);
                for (Path f : c.files()) {
                    assertTrue(f.toAbsolutePath().normalize().startsWith(model.toAbsolutePath().normalize()), "try " + i + ": " + f + " inside the model");
                }
                opened++;
            } catch (CheckpointException e) {
                assertFalse(e.getMessage().contains("\n"), "try " + i + ": one line: " + e.getMessage());
            } catch (Throwable t) {
                fail("try " + i + " (seed " + SEED + ") threw " + t + " for index:\n" + text, t);
            }
        }
        assertTrue(opened < TRIES, "most mutations are refused (" + opened + " opened)");
    }
}
