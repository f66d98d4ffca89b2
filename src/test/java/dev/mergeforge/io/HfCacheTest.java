package dev.mergeforge.io;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.mergeforge.io.CheckpointTest.refused;
import static dev.mergeforge.io.CheckpointTest.shard;
import static dev.mergeforge.io.CheckpointTest.sizes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checkpoint over a fake Hugging Face cache laid out like the real one (snapshot files are symlinks into blobs/). */
class HfCacheTest {
    @TempDir Path root;
    Path repo;

    /** Puts {@code content} in blobs/ and links snapshots/commit/name to it, as huggingface_hub does. */
    void cached(String commit, String name, Path content) throws Exception {
        Path blob = repo.resolve("blobs").resolve(commit + "-" + name.replace('/', '_'));
        Files.createDirectories(blob.getParent());
        Files.move(content, blob);
        Path link = repo.resolve("snapshots").resolve(commit).resolve(name);
        Files.createDirectories(link.getParent());
        Files.createSymbolicLink(link, link.getParent().relativize(blob));
    }

    void cachedText(String commit, String name, String text) throws Exception {
        cached(commit, name, Files.writeString(Files.createTempFile(root, "t", ".tmp"), text));
    }

    @BeforeEach
    void buildCache() throws Exception {
        repo = Files.createDirectories(root.resolve("models--acme--tiny-llm"));
        // main: a single file
        cachedText("aaaa1111", "config.json", "{\"model_type\":\"llama\"}");
        cached("aaaa1111", "model.safetensors", shard(root.resolve("s.tmp"), sizes("a", 2), 1));
        // v2: sharded, with an index
        cachedText("bbbb2222", "config.json", "{\"model_type\":\"mistral\"}");
        cached("bbbb2222", "model-00001-of-00002.safetensors", shard(root.resolve("s1.tmp"), sizes("a", 1), 20));
        cached("bbbb2222", "model-00002-of-00002.safetensors", shard(root.resolve("s2.tmp"), sizes("b", 1), 30));
        cachedText("bbbb2222", "model.safetensors.index.json", "{\"metadata\":{},\"weight_map\":{"
                + "\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
        Files.createDirectories(repo.resolve("refs"));
        Files.writeString(repo.resolve("refs/main"), "aaaa1111");
        Files.writeString(repo.resolve("refs/v2"), "bbbb2222\n");
    }

    @Test
    void resolvesMainThroughRefs() {
        try (Checkpoint c = Checkpoint.open("acme/tiny-llm", root)) {
            assertEquals(repo.resolve("snapshots/aaaa1111").toAbsolutePath().normalize(), c.dir());
            assertEquals("acme/tiny-llm", c.ref());
            assertEquals("llama", c.config().get("model_type").asText());
            assertArrayEquals(new byte[] {1, 2}, c.tensor("a").data().toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void resolvesABranchAndACommitHash() {
        try (Checkpoint c = Checkpoint.open("acme/tiny-llm@v2", root)) {
            assertEquals("mistral", c.config().get("model_type").asText());
            assertEquals(List.of("a", "b"), c.names());
            assertEquals(30, c.tensor("b").data().get(ValueLayout.JAVA_BYTE, 0));
        }
        try (Checkpoint c = Checkpoint.open("acme/tiny-llm@aaaa1111", root)) {
            assertEquals(repo.resolve("snapshots/aaaa1111").toAbsolutePath().normalize(), c.dir());
        }
    }

    @Test
    void resolvesAnIdWithoutOrganisation() throws Exception {
        Path other = Files.createDirectories(root.resolve("models--gpt2/snapshots/cccc/"));
        shard(other.resolve("model.safetensors"), sizes("w", 1), 0);
        Files.createDirectories(root.resolve("models--gpt2/refs"));
        Files.writeString(root.resolve("models--gpt2/refs/main"), "cccc");
        try (Checkpoint c = Checkpoint.open("gpt2", root)) {
            assertEquals(List.of("w"), c.names());
        }
    }

    @Test
    void missingModelsSayWhereItLookedAndHowToGetThem() {
        refused(() -> Checkpoint.open("acme/absent", root), "'acme/absent'", root.resolve("models--acme--absent").toString(),
                "download it first", "hf download acme/absent", "local model directory");
        refused(() -> Checkpoint.open("acme/tiny-llm@v9", root), "revision 'v9'", "refs/main", "refs/v2",
                "snapshots/aaaa1111", "download it first");
    }

    @Test
    void refusesARefThatIsNotACommit() throws Exception {
        Files.writeString(repo.resolve("refs/main"), "../../../etc");
        refused(() -> Checkpoint.open("acme/tiny-llm", root), "refs/main", "not a commit hash", "re-download");
    }

    @Test
    void refusesABrokenSymlinkLeftByAnUnfinishedDownload() throws Exception {
        Files.delete(repo.resolve("blobs/aaaa1111-model.safetensors"));
        refused(() -> Checkpoint.open("acme/tiny-llm", root), "model.safetensors", "broken symlink", "download the model again");
        Files.delete(repo.resolve("blobs/bbbb2222-model-00002-of-00002.safetensors"));
        refused(() -> Checkpoint.open("acme/tiny-llm@v2", root), "model-00002-of-00002.safetensors", "missing", "download");
    }

    @Test
    void parsesIdsAndRevisions() {
        assertEquals(new HfCache.HubId("org/name", "main"), HfCache.parse("org/name"));
        assertEquals(new HfCache.HubId("org/name", "refs/pr/1"), HfCache.parse("org/name@refs/pr/1"));
        assertEquals("models--org--name.v1", HfCache.parse("org/name.v1").folder());
        for (String bad : List.of("../x", "a/b/c", "org/na me", "/abs/path", "org/..", "org/name@../x", "org/name@", "./m")) {
            assertNull(HfCache.parse(bad), bad);
        }
    }

    @Test
    void defaultRootFollowsHuggingfaceHub() {
        assertEquals(Path.of("/c/hub"), HfCache.defaultRoot(Map.of("HF_HUB_CACHE", "/c/hub", "HF_HOME", "/h"), "/home/u"));
        assertEquals(Path.of("/h/hub"), HfCache.defaultRoot(Map.of("HF_HOME", "/h", "XDG_CACHE_HOME", "/x"), "/home/u"));
        assertEquals(Path.of("/x/huggingface/hub"), HfCache.defaultRoot(Map.of("XDG_CACHE_HOME", "/x"), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/huggingface/hub"), HfCache.defaultRoot(Map.of(), "/home/u"));
        assertTrue(HfCache.defaultRoot().isAbsolute() || System.getenv("HF_HUB_CACHE") != null || System.getenv("HF_HOME") != null);
    }
}
