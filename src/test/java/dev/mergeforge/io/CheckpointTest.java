package dev.mergeforge.io;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checkpoint over single-file and sharded directories, and every refusal. */
class CheckpointTest {
    @TempDir Path tmp;

    /** Writes a safetensors file whose tensor "name" of n U8 elements holds bytes seed, seed+1, ... */
    static Path shard(Path p, Map<String, Integer> tensors, int seed) {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        tensors.forEach((n, size) -> entries.add(new SafetensorsWriter.Entry(n, DType.U8, Shape.of(size))));
        try (SafetensorsWriter w = new SafetensorsWriter(p, entries, Map.of("format", "pt"))) {
            int v = seed;
            for (SafetensorsWriter.Entry e : entries) {
                MemorySegment s = w.slot(e.name());
                for (long i = 0; i < s.byteSize(); i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) v++);
            }
        }
        return p;
    }

    static Map<String, Integer> sizes(Object... kv) {
        Map<String, Integer> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], (Integer) kv[i + 1]);
        return m;
    }

    static void index(Path dir, String weightMapJson) throws Exception {
        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"metadata\":{\"total_size\":10},\"weight_map\":{" + weightMapJson + "}}");
    }

    /** A two-shard model whose index lists tensors in an order different from the shards' headers. */
    Path sharded(String name) throws Exception {
        Path d = Files.createDirectories(tmp.resolve(name));
        shard(d.resolve("model-00001-of-00002.safetensors"), sizes("x", 3, "w", 2), 10);
        shard(d.resolve("model-00002-of-00002.safetensors"), sizes("z", 5), 50);
        index(d, "\"w\":\"model-00001-of-00002.safetensors\",\"z\":\"model-00002-of-00002.safetensors\","
                + "\"x\":\"model-00001-of-00002.safetensors\"");
        Files.writeString(d.resolve("config.json"), "{\"model_type\":\"llama\",\"hidden_size\":8}");
        return d;
    }

    static CheckpointException refused(Executable ex, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, ex);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "mentions '" + f + "': " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    @Test
    void singleFile() throws Exception {
        Path d = Files.createDirectories(tmp.resolve("single"));
        shard(d.resolve("model.safetensors"), sizes("b", 2, "a", 3), 1);
        Files.writeString(d.resolve("config.json"), "{\"model_type\":\"gpt2\"}");
        try (Checkpoint c = Checkpoint.open(d.toString())) {
            assertEquals(d.toAbsolutePath().normalize(), c.dir());
            assertEquals(d.toString(), c.ref());
            assertEquals(List.of("b", "a"), c.names());
            assertTrue(c.contains("a"));
            assertFalse(c.contains("c"));
            assertArrayEquals(new byte[] {3, 4, 5}, c.tensor("a").data().toArray(ValueLayout.JAVA_BYTE));
            assertEquals(5, c.totalBytes());
            assertEquals("gpt2", c.config().get("model_type").asText());
            assertEquals(Map.of("format", "pt"), c.metadata());
            assertEquals(List.of(d.toAbsolutePath().normalize().resolve("model.safetensors")), c.files());
            refused(() -> c.tensor("c"), "'c'", d.toString(), "check the name");
        }
    }

    @Test
    void oneOddlyNamedSafetensorsFile() throws Exception {
        Path d = Files.createDirectories(tmp.resolve("odd"));
        shard(d.resolve("weights.safetensors"), sizes("a", 1), 7);
        try (Checkpoint c = Checkpoint.open(d)) {
            assertEquals(List.of("a"), c.names());
            assertEquals(7, c.tensor("a").data().get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    @Test
    void shardedFollowsTheIndexOrderAndReadsEachShard() throws Exception {
        Path d = sharded("sh");
        try (Checkpoint c = Checkpoint.open(d.toString())) {
            assertEquals(List.of("w", "z", "x"), c.names());
            assertArrayEquals(new byte[] {13, 14}, c.tensor("w").data().toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(new byte[] {50, 51, 52, 53, 54}, c.tensor("z").data().toArray(ValueLayout.JAVA_BYTE));
            assertEquals(10, c.totalBytes());
            assertEquals("10", c.metadata().get("total_size"));
            assertEquals("pt", c.metadata().get("format"));
            assertEquals(8, c.config().get("hidden_size").asInt());
            c.verify();
        }
    }

    @Test
    void indexWinsOverASingleFileAsInMergekit() throws Exception {
        Path d = sharded("both");
        shard(d.resolve("model.safetensors"), sizes("other", 1), 0);
        try (Checkpoint c = Checkpoint.open(d)) {
            assertEquals(List.of("w", "z", "x"), c.names());
        }
    }

    @Test
    void shardsOpenLazily() throws Exception {
        Path d = sharded("lazy");
        // corrupt shard 2: open() and shard-1 tensors still work, shard-2 tensors fail naming the file
        Files.write(d.resolve("model-00002-of-00002.safetensors"), new byte[] {1, 2, 3});
        try (Checkpoint c = Checkpoint.open(d)) {
            assertEquals(2, c.tensor("w").numel());
            refused(() -> c.tensor("z"), "model-00002-of-00002.safetensors", "too short");
        }
    }

    @Test
    void symlinkedShardInsideTheDirectoryIsFollowed() throws Exception {
        Path blobs = Files.createDirectories(tmp.resolve("blobs"));
        Path d = Files.createDirectories(tmp.resolve("linked"));
        shard(blobs.resolve("abc123"), sizes("a", 2), 9);
        Files.createSymbolicLink(d.resolve("model-00001-of-00001.safetensors"), Path.of("../blobs/abc123"));
        index(d, "\"a\":\"model-00001-of-00001.safetensors\"");
        try (Checkpoint c = Checkpoint.open(d)) {
            assertArrayEquals(new byte[] {9, 10}, c.tensor("a").data().toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void refusesIndexEntriesOutsideTheDirectory() throws Exception {
        Path d = sharded("escape");
        shard(tmp.resolve("outside.safetensors"), sizes("w", 2), 0);
        for (String bad : List.of("../outside.safetensors", tmp.resolve("outside.safetensors").toString(),
                "sub/../../outside.safetensors", "")) {
            index(d, "\"w\":\"" + bad + "\"");
            refused(() -> Checkpoint.open(d), "model.safetensors.index.json", "'w'", "outside the model directory");
        }
    }

    @Test
    void refusesMissingShardsNamingThemAll() throws Exception {
        Path d = sharded("missing");
        index(d, "\"w\":\"model-00001-of-00002.safetensors\",\"q\":\"model-00003-of-00003.safetensors\","
                + "\"r\":\"model-00004-of-00004.safetensors\"");
        refused(() -> Checkpoint.open(d), "model-00003-of-00003.safetensors", "model-00004-of-00004.safetensors",
                "download the missing shards");
    }

    @Test
    void refusesATensorTheIndexPutsInTheWrongShard() throws Exception {
        Path d = sharded("wrong");
        index(d, "\"w\":\"model-00002-of-00002.safetensors\"");
        try (Checkpoint c = Checkpoint.open(d)) {
            refused(() -> c.tensor("w"), "'w'", "model-00002-of-00002.safetensors", "does not contain it", "re-download");
            refused(c::verify, "'w'");
        }
    }

    @Test
    void refusesBrokenIndexes() throws Exception {
        Path d = sharded("broken");
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": [1]}");
        refused(() -> Checkpoint.open(d), "model.safetensors.index.json", "weight_map");
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"w\": 3}}");
        refused(() -> Checkpoint.open(d), "model.safetensors.index.json", "'w'");
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": ");
        refused(() -> Checkpoint.open(d), "model.safetensors.index.json", "JSON");
        Files.writeString(d.resolve("model.safetensors.index.json"), "{\"weight_map\": {}}");
        refused(() -> Checkpoint.open(d), "model.safetensors.index.json", "empty");
    }

    @Test
    void refusesPytorchOnlyWithTheConversionCommand() throws Exception {
        Path d = Files.createDirectories(tmp.resolve("pt"));
        Files.write(d.resolve("pytorch_model.bin"), new byte[] {1});
        Files.writeString(d.resolve("config.json"), "{}");
        refused(() -> Checkpoint.open(d), "pytorch_model.bin", "save_pretrained", "safe_serialization=True", d.toString());
        Path e = Files.createDirectories(tmp.resolve("pt2"));
        Files.write(e.resolve("consolidated.pt"), new byte[] {1});
        refused(() -> Checkpoint.open(e), "consolidated.pt", "safe_serialization=True");
    }

    @Test
    void refusesDirectoriesWithoutWeightsOrWithSeveralFiles() throws Exception {
        Path d = Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(d.resolve("config.json"), "{}");
        refused(() -> Checkpoint.open(d), "no weights", "config.json", d.toString(), "download the weights");
        Path two = Files.createDirectories(tmp.resolve("two"));
        shard(two.resolve("a.safetensors"), sizes("a", 1), 0);
        shard(two.resolve("b.safetensors"), sizes("b", 1), 0);
        refused(() -> Checkpoint.open(two), "a.safetensors", "b.safetensors", "model.safetensors.index.json");
    }

    @Test
    void configErrorsComeWhenAsked() throws Exception {
        Path d = Files.createDirectories(tmp.resolve("noconfig"));
        shard(d.resolve("model.safetensors"), sizes("a", 1), 0);
        try (Checkpoint c = Checkpoint.open(d)) {
            refused(c::config, "config.json", "download it");
            Files.writeString(d.resolve("config.json"), "{\"a\": ");
            refused(c::config, "config.json", "not valid JSON");
            Files.writeString(d.resolve("config.json"), "[]");
            refused(c::config, "config.json", "not a JSON object");
        }
    }

    @Test
    void refusesBadReferences() throws Exception {
        Path f = shard(tmp.resolve("file.safetensors"), sizes("a", 1), 0);
        refused(() -> Checkpoint.open(f.toString(), tmp), "is a file", "pass the directory");
        refused(() -> Checkpoint.open("", tmp), "empty model reference");
        refused(() -> Checkpoint.open(tmp.resolve("nope/deeper/still").toString(), tmp), "not found", "local model directory");
        refused(() -> Checkpoint.open(tmp.resolve("nope")), "does not exist");
    }

    @Test
    void closedCheckpointRefusesNewShards() throws Exception {
        Path d = sharded("closed");
        Checkpoint c = Checkpoint.open(d);
        c.close();
        c.close();
        assertThrows(IllegalStateException.class, () -> c.tensor("w"));
    }

    @Test
    void readsTheSharedZooModel() {
        String shared = System.getProperty("mergeforge.shared");
        Path base = shared == null ? null : Path.of(shared, "zoo", "base");
        org.junit.jupiter.api.Assumptions.assumeTrue(base != null && Files.isDirectory(base), "no shared zoo");
        try (Checkpoint c = Checkpoint.open(base.toString())) {
            assertEquals("llama", c.config().get("model_type").asText());
            assertTrue(c.contains("model.embed_tokens.weight"));
            assertEquals(Shape.of(64, 128), c.tensor("model.embed_tokens.weight").shape());
            long params = 0;
            for (String n : c.names()) params += c.tensor(n).numel();
            assertEquals(params * 4, c.totalBytes());
        }
    }

    /** readInto copies a tensor (or a slice of one) with positional reads: the bytes of its mapping, never another model's. */
    @Test
    void readIntoCopiesTheMappedBytesOfItsOwnTensorsOnly() throws Exception {
        Path a = Files.createDirectories(tmp.resolve("a")), b = Files.createDirectories(tmp.resolve("b"));
        shard(a.resolve("model.safetensors"), sizes("x", 5000, "y", 123), 3);
        shard(b.resolve("model.safetensors"), sizes("x", 5000), 9);
        try (Checkpoint ca = Checkpoint.open(a); Checkpoint cb = Checkpoint.open(b);
             java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            for (String n : List.of("x", "y")) {
                TensorView v = ca.tensor(n);
                MemorySegment dst = arena.allocate(v.data().byteSize());
                assertTrue(ca.holds(v));
                assertTrue(ca.readInto(v, dst));
                assertEquals(-1, dst.mismatch(v.data()), n);
            }
            TensorView x = ca.tensor("x");
            TensorView tail = new TensorView("x", DType.U8, Shape.of(1000), x.data().asSlice(4000), "a");
            MemorySegment dst = arena.allocate(1000);
            assertTrue(ca.readInto(tail, dst));
            assertEquals(-1, dst.mismatch(x.data().asSlice(4000)), "a slice of a tensor");
            TensorView other = cb.tensor("x");
            assertFalse(ca.holds(other));
            assertFalse(ca.readInto(other, arena.allocate(5000)), "another checkpoint's tensor");
            assertThrows(IllegalArgumentException.class, () -> ca.readInto(x, arena.allocate(10)));
        }
    }

    /** A file cut short after it was opened (changed under the merge) is a one-line error naming file and tensor, not a short copy. */
    @Test
    void readIntoAFileCutShortSaysTheFileChanged() throws Exception {
        Path a = Files.createDirectories(tmp.resolve("cut"));
        Path file = shard(a.resolve("model.safetensors"), sizes("x", 5000, "y", 123), 3);
        try (Checkpoint c = Checkpoint.open(a); java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            TensorView y = c.tensor("y");
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(Files.size(file) - 100);
            }
            CheckpointException e = assertThrows(CheckpointException.class, () -> c.readInto(y, arena.allocate(123)));
            assertTrue(e.getMessage().contains("'y'") && e.getMessage().contains(file.toString()) && e.getMessage().contains("changed"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"));
        }
    }
}
