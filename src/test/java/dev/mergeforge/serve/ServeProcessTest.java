package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static dev.mergeforge.serve.ServeFixtures.finalOf;
import static dev.mergeforge.serve.ServeFixtures.until;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `mergeforge serve` as a real child process: its pipes, exit when stdin closes, and the generated HTTP token. */
@Timeout(120)
class ServeProcessTest {
    @TempDir static Path root;
    static ServeFixtures fx;

    @BeforeAll
    static void models() throws IOException { fx = new ServeFixtures(root.resolve("fx")); }

    private static Process serve(String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-XX:+PerfDisableSharedMem", "-cp", System.getProperty("java.class.path"), "dev.mergeforge.cli.Main", "serve"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    }

    private static BlockingQueue<JsonNode> lines(Process p) {
        BlockingQueue<JsonNode> q = new LinkedBlockingQueue<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l = r.readLine(); l != null; l = r.readLine()) q.add(ServeFixtures.parse(l));
            } catch (IOException e) {
                // the process ended
            }
        });
        return q;
    }

    @Test
    void pipesServeUntilStdinClosesThenTheProcessExitsCleanly() throws Exception {
        Process p = serve("--max-jobs", "1");
        try {
            BlockingQueue<JsonNode> lines = lines(p);
            assertEquals("ready", until(lines, n -> true).getFirst().path("event").asText());
            Path out = root.resolve("proc").resolve("merged");
            try (PrintWriter w = new PrintWriter(p.getOutputStream(), true, StandardCharsets.UTF_8)) {
                w.println(fx.merge("m", out));
                w.println("{oops");
                w.println(fx.eval("e"));
            } // stdin closes: the server finishes the jobs and exits
            List<JsonNode> seen = new ArrayList<>();
            seen.addAll(until(lines, finalOf("m")));
            if (seen.stream().noneMatch(finalOf("e"))) seen.addAll(until(lines, finalOf("e")));
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "serve did not exit after stdin closed");
            assertEquals(0, p.exitValue());
            assertTrue(seen.stream().anyMatch(n -> n.path("event").asText().equals("error") && n.path("id").isNull()), "the malformed line: " + seen);
            assertTrue(seen.stream().filter(finalOf("m")).allMatch(n -> n.path("event").asText().equals("result")), seen.toString());
            assertTrue(seen.stream().filter(finalOf("e")).allMatch(n -> n.path("event").asText().equals("result")), seen.toString());
            assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void httpPrintsItsGeneratedTokenOnceAndChecksIt() throws Exception {
        Process p = serve("--http", "0");
        try {
            JsonNode ready = until(lines(p), n -> true).getFirst();
            String url = ready.path("http").asText(), token = ready.path("token").asText();
            assertTrue(url.startsWith("http://127.0.0.1:"), ready.toString());
            assertTrue(token.length() >= 32, ready.toString());
            HttpClient c = HttpClient.newHttpClient();
            assertEquals(200, c.send(HttpRequest.newBuilder(URI.create(url + "/health")).build(), HttpResponse.BodyHandlers.ofString()).statusCode());
            HttpRequest.Builder status = HttpRequest.newBuilder(URI.create(url + "/v1/requests")).POST(HttpRequest.BodyPublishers.ofString("{\"id\":1,\"op\":\"status\"}"));
            HttpResponse<String> ok = c.send(status.copy().header("Authorization", "Bearer " + token).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, ok.statusCode(), ok.body());
            assertEquals("result", ServeFixtures.parse(ok.body().strip()).path("event").asText());
            assertEquals(401, c.send(status.copy().header("Authorization", "Bearer " + token.substring(1)).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());
        } finally {
            p.destroy();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }
}
