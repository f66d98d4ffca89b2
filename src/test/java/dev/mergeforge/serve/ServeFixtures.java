package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/** A tiny model family, a merge config, eval text and request lines shared by the server tests. */
final class ServeFixtures {
    static final ObjectMapper JSON = new ObjectMapper();
    /** How long a test waits for one response line before it fails (never reached when the server works). */
    static final long LINE_TIMEOUT_S = 60;

    final RandomModels.Family fam;
    final Path config, text, root;

    ServeFixtures(Path root) throws IOException {
        this.root = root;
        fam = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, root.resolve("models"));
        config = MergeFixtures.linear(root, "linear.yml", fam.base(), fam.fineTunes().get(0), fam.fineTunes().get(1));
        text = MergeFixtures.yaml(root, "text.txt", "hello world\nthe quick brown fox\n");
    }

    String merge(String id, Path out) {
        return "{\"id\":\"%s\",\"op\":\"merge\",\"config\":\"%s\",\"output\":\"%s\",\"backend\":\"java\",\"threads\":1}".formatted(id, config, out);
    }

    String plan(String id, Path out) {
        return "{\"id\":\"%s\",\"op\":\"plan\",\"config\":\"%s\",\"output\":\"%s\"}".formatted(id, config, out);
    }

    String calibrate(String id, Path out) {
        return "{\"id\":\"%s\",\"op\":\"calibrate\",\"model\":\"%s\",\"data\":\"%s\",\"samples\":2,\"seq_len\":8,\"threads\":1,\"cache\":false,\"output\":\"%s\"}"
                .formatted(id, fam.base(), text, out);
    }

    String eval(String id) {
        return "{\"id\":\"%s\",\"op\":\"eval\",\"model\":\"%s\",\"text\":\"%s\",\"max_tokens\":32,\"threads\":1}".formatted(id, fam.base(), text);
    }

    String mergeEval(String id) {
        return "{\"id\":\"%s\",\"op\":\"merge_eval\",\"config\":\"%s\",\"text\":\"%s\",\"max_tokens\":32,\"backend\":\"java\",\"threads\":1}"
                .formatted(id, config, text);
    }

    static JsonNode parse(String line) {
        try {
            return JSON.readTree(line);
        } catch (IOException e) {
            throw new AssertionError("not a JSON line: " + line, e);
        }
    }

    /** Takes lines until one matches; fails after {@link #LINE_TIMEOUT_S} without a line. Returns every line taken. */
    static List<JsonNode> until(BlockingQueue<JsonNode> lines, Predicate<JsonNode> stop) throws InterruptedException {
        List<JsonNode> seen = new ArrayList<>();
        for (int i = 0; i < 10_000; i++) {
            JsonNode n = lines.poll(LINE_TIMEOUT_S, TimeUnit.SECONDS);
            assertNotNull(n, "no response line within " + LINE_TIMEOUT_S + " s; seen: " + seen);
            seen.add(n);
            if (stop.test(n)) return seen;
        }
        throw new AssertionError("no matching line among 10000: " + seen.getLast());
    }

    /** The final line (result or error) of request {@code id}. */
    static Predicate<JsonNode> finalOf(String id) {
        return n -> n.path("id").asText().equals(id) && (n.path("event").asText().equals("result") || n.path("event").asText().equals("error"));
    }

    static Predicate<JsonNode> event(String id, String event) {
        return n -> n.path("id").asText().equals(id) && n.path("event").asText().equals(event);
    }

    /** Asserts that a failed job left nothing in its output's folder (no output, no temporary directory). */
    static void nothingLeftIn(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(), s.toList());
        }
    }
}
