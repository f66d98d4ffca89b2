package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static dev.mergeforge.serve.ServeFixtures.event;
import static dev.mergeforge.serve.ServeFixtures.finalOf;
import static dev.mergeforge.serve.ServeFixtures.until;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The protocol over a real socket on 127.0.0.1 (an ephemeral port): tokens, every request type, bad requests, cancellation, two clients. */
@Timeout(120)
class HttpServeTest {
    private static final String TOKEN = "test-token-0123456789abcdef";
    @TempDir static Path root;
    static ServeFixtures fx;
    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private HttpFront front;

    @BeforeAll
    static void models() throws IOException { fx = new ServeFixtures(root.resolve("fx")); }

    @AfterEach
    void stop() {
        if (front != null) front.close();
    }

    private URI uri(String path) { return URI.create("http://127.0.0.1:" + front.port() + path); }

    private void start(int maxJobs, Consumer<String> gate) {
        front = HttpFront.start("127.0.0.1", 0, TOKEN, new Jobs(1L << 30, maxJobs, gate));
    }

    private HttpResponse<Stream<String>> post(String body, String token) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri("/v1/requests")).timeout(Duration.ofSeconds(60)).POST(HttpRequest.BodyPublishers.ofString(body));
        if (token != null) b.header("Authorization", "Bearer " + token);
        return client.send(b.build(), HttpResponse.BodyHandlers.ofLines());
    }

    /** Posts a request and returns all its lines (the stream ends after the final line). */
    private List<JsonNode> call(String body) throws Exception {
        HttpResponse<Stream<String>> r = post(body, TOKEN);
        try (Stream<String> s = r.body()) {
            List<JsonNode> lines = s.map(ServeFixtures::parse).toList();
            assertEquals(200, r.statusCode(), lines.toString());
            return lines;
        }
    }

    /** Posts a request on another thread, handing its lines over one by one as they arrive. */
    private CompletableFuture<Void> stream(String body, BlockingQueue<JsonNode> lines) {
        return CompletableFuture.runAsync(() -> {
            try (Stream<String> s = post(body, TOKEN).body()) {
                for (Iterator<String> it = s.iterator(); it.hasNext(); ) lines.add(ServeFixtures.parse(it.next()));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    @Test
    void healthNeedsNoTokenAndEverythingElseTheRightOne() throws Exception {
        start(1, id -> { });
        HttpResponse<String> h = client.send(HttpRequest.newBuilder(uri("/health")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, h.statusCode());
        assertEquals("ok", ServeFixtures.parse(h.body()).path("status").asText());
        for (String wrong : new String[] {null, "not-the-token", TOKEN + "x"}) {
            HttpResponse<Stream<String>> r = post("{\"id\":\"s\",\"op\":\"status\"}", wrong);
            List<String> body = r.body().toList();
            assertEquals(401, r.statusCode(), "token " + wrong);
            assertTrue(ServeFixtures.parse(body.getFirst()).path("message").asText().contains("bearer token"), body.toString());
        }
        Path out = root.resolve("http-token").resolve("merged");
        assertEquals(401, post(fx.merge("m", out), "wrong").statusCode());
        assertFalse(Files.exists(out), "an unauthorised merge never runs");
        HttpResponse<String> get = client.send(HttpRequest.newBuilder(uri("/v1/requests")).header("Authorization", "Bearer " + TOKEN).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(405, get.statusCode());
        assertEquals(404, client.send(HttpRequest.newBuilder(uri("/nope")).build(), HttpResponse.BodyHandlers.ofString()).statusCode());
        HttpResponse<String> big = client.send(HttpRequest.newBuilder(uri("/v1/requests")).header("Authorization", "Bearer " + TOKEN)
                .POST(HttpRequest.BodyPublishers.ofString("{\"id\":\"" + "x".repeat(1 << 20) + "\",\"op\":\"status\"}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(413, big.statusCode());
        assertTrue(ServeFixtures.parse(big.body()).path("message").asText().contains("request body over"), big.body());
    }

    @Test
    void everyRequestTypeAndMalformedOnes() throws Exception {
        start(1, id -> { });
        Path dir = root.resolve("http-every");
        JsonNode plan = call(fx.plan("p", dir.resolve("m"))).getLast();
        assertEquals("linear", plan.at("/result/method").asText(), plan.toString());
        List<JsonNode> merge = call(fx.merge("m", dir.resolve("m")));
        assertEquals("result", merge.getLast().path("event").asText(), merge.getLast().toString());
        assertEquals(merge.getLast().at("/result/tensors").asInt(), merge.stream().filter(n -> n.path("event").asText().equals("tensor")).count());
        assertEquals(plan.at("/result/bytes_out").asLong(), Files.size(dir.resolve("m").resolve("model.safetensors")));
        JsonNode cal = call(fx.calibrate("c", dir.resolve("stats.safetensors"))).getLast();
        assertEquals("result", cal.path("event").asText(), cal.toString());
        JsonNode ev = call(fx.eval("e")).getLast();
        assertTrue(ev.at("/result/text/perplexity").asDouble() > 1, ev.toString());
        JsonNode me = call(fx.mergeEval("me")).getLast();
        assertEquals("result", me.path("event").asText(), me.toString());
        JsonNode st = call("{\"id\":\"s\",\"op\":\"status\"}").getLast();
        assertEquals(List.of("p", "m", "c", "e", "me"), st.at("/result/jobs").findValuesAsText("id"));
        JsonNode cancel = call("{\"id\":\"x\",\"op\":\"cancel\",\"target\":\"m\"}").getLast();
        assertEquals("done", cancel.at("/result/state").asText());

        for (String bad : new String[] {"{not json", "{\"id\":\"b\",\"op\":\"merge\"}", "{\"id\":\"b\",\"op\":\"status\",\"x\":1}"}) {
            HttpResponse<Stream<String>> r = post(bad, TOKEN);
            List<JsonNode> lines = r.body().map(ServeFixtures::parse).toList();
            assertEquals(400, r.statusCode(), bad);
            assertEquals(List.of("error"), lines.stream().map(n -> n.path("event").asText()).toList());
            assertEquals(2, lines.getFirst().path("exit_code").asInt());
        }
        assertEquals("result", call("{\"id\":\"alive\",\"op\":\"status\"}").getLast().path("event").asText());
    }

    @Test
    void aJobCancelledFromAnotherConnectionLeavesNothing() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        start(1, id -> {
            if (id.equals("m")) StdioServeTest.await(hold);
        });
        Path dir = root.resolve("http-cancel");
        BlockingQueue<JsonNode> lines = new LinkedBlockingQueue<>();
        CompletableFuture<Void> merging = stream(fx.merge("m", dir.resolve("merged")), lines);
        until(lines, event("m", "running"));
        JsonNode c = call("{\"id\":\"c\",\"op\":\"cancel\",\"target\":\"m\"}").getLast();
        assertTrue(c.at("/result/cancelling").asBoolean(), c.toString());
        hold.countDown();
        JsonNode last = until(lines, finalOf("m")).getLast();
        assertTrue(last.path("cancelled").asBoolean(), last.toString());
        merging.get(60, TimeUnit.SECONDS);
        ServeFixtures.nothingLeftIn(dir);
    }

    @Test
    void twoConcurrentClientsBothGetTheirMerge() throws Exception {
        CountDownLatch bothRunning = new CountDownLatch(2);
        start(2, id -> {
            bothRunning.countDown();
            StdioServeTest.await(bothRunning); // each job starts only once the other one also runs: they overlap
        });
        Path dir = root.resolve("http-two");
        BlockingQueue<JsonNode> a = new LinkedBlockingQueue<>(), b = new LinkedBlockingQueue<>();
        CompletableFuture<Void> fa = stream(fx.merge("a", dir.resolve("a")), a), fb = stream(fx.merge("b", dir.resolve("b")), b);
        List<JsonNode> la = until(a, finalOf("a")), lb = until(b, finalOf("b"));
        fa.get(60, TimeUnit.SECONDS);
        fb.get(60, TimeUnit.SECONDS);
        assertEquals("result", la.getLast().path("event").asText(), la.getLast().toString());
        assertEquals("result", lb.getLast().path("event").asText(), lb.getLast().toString());
        assertTrue(la.stream().allMatch(n -> n.path("id").asText().equals("a")), "a connection gets only its own request's lines");
        assertTrue(lb.stream().allMatch(n -> n.path("id").asText().equals("b")));
        assertArrayEquals(Files.readAllBytes(dir.resolve("a/model.safetensors")), Files.readAllBytes(dir.resolve("b/model.safetensors")));
    }
}
