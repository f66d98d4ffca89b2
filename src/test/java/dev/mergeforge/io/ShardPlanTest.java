package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShardPlanTest {
    static SafetensorsWriter.Entry e(String n, long elems) { return new SafetensorsWriter.Entry(n, DType.F32, Shape.of(elems)); }

    @Test
    void greedyShardsInOrderWithTransformersNames(@TempDir Path dir) throws Exception {
        // 400, 400, 800 (alone, over the limit), 100 bytes with a 1000-byte limit
        ShardPlan p = ShardPlan.of(List.of(e("a", 100), e("b", 100), e("c", 200), e("d", 25)), 1000);
        assertEquals(List.of(List.of("a", "b"), List.of("c", "d")),
                p.shards().stream().map(s -> s.stream().map(SafetensorsWriter.Entry::name).toList()).toList());
        assertEquals(List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"), p.fileNames());
        p.writeIndex(dir);
        String index = Files.readString(dir.resolve("model.safetensors.index.json"));
        assertTrue(index.contains("\"total_size\" : 1700") && index.contains("\"d\" : \"model-00002-of-00002.safetensors\""), index);
    }

    @Test
    void oneShardIsModelSafetensorsWithoutIndex(@TempDir Path dir) throws Exception {
        ShardPlan p = ShardPlan.of(List.of(e("a", 10), e("b", 10)), 1L << 30);
        assertEquals(List.of("model.safetensors"), p.fileNames());
        p.writeIndex(dir);
        assertTrue(Files.notExists(dir.resolve("model.safetensors.index.json")));
    }
}
