package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.eval.Evaluator;
import dev.mergeforge.eval.TextLoss;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.channels.Channels;
import java.nio.channels.Pipe;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;

import static dev.mergeforge.serve.ServeFixtures.event;
import static dev.mergeforge.serve.ServeFixtures.finalOf;
import static dev.mergeforge.serve.ServeFixtures.until;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The protocol over piped stdin/stdout, in process: every request type, bad requests, cancellation, admission. */
@Timeout(120)
class StdioServeTest {
    @TempDir static Path root;
    static ServeFixtures fx;

    /** A server on piped streams: {@link #send} writes a request line, {@link #lines} receives response lines. */
    private final class Pipes {
        final PrintWriter toServer;
        final BlockingQueue<JsonNode> lines = new LinkedBlockingQueue<>();
        final Thread server, reader;

        Pipes(Jobs jobs) throws IOException {
            // OS pipes (java.io's piped streams break when a writing thread ends, and every job is a thread)
            Pipe requests = Pipe.open(), responses = Pipe.open();
            InputStream serverIn = Channels.newInputStream(requests.source());
            InputStream out = Channels.newInputStream(responses.source());
            PrintWriter serverOut = new PrintWriter(new OutputStreamWriter(Channels.newOutputStream(responses.sink()), StandardCharsets.UTF_8));
            toServer = new PrintWriter(new OutputStreamWriter(Channels.newOutputStream(requests.sink()), StandardCharsets.UTF_8), true);
            server = Thread.ofPlatform().daemon().start(() -> {
                StdioFront.serve(new BufferedReader(new InputStreamReader(serverIn, StandardCharsets.UTF_8)), serverOut, jobs);
                try {
                    jobs.drain();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                serverOut.close();
            });
            BufferedReader fromServer = new BufferedReader(new InputStreamReader(out, StandardCharsets.UTF_8));
            reader = Thread.ofPlatform().daemon().start(() -> {
                try {
                    for (String l = fromServer.readLine(); l != null; l = fromServer.readLine()) lines.add(ServeFixtures.parse(l));
                } catch (IOException e) {
                    // the server side closed the pipe
                }
            });
        }

        void send(String line) { toServer.println(line); }

        void close() throws InterruptedException {
            toServer.close();
            server.join(60_000);
        }
    }

    private Pipes pipes;

    @BeforeAll
    static void models() throws IOException { fx = new ServeFixtures(root.resolve("fx")); }

    @AfterEach
    void stop() throws InterruptedException {
        if (pipes != null) pipes.close();
    }

    private Pipes start(long budget, int maxJobs, Consumer<String> gate) throws IOException {
        pipes = new Pipes(new Jobs(budget, maxJobs, gate));
        return pipes;
    }

    @Test
    void everyRequestTypeAnswersWithItsFinalLine() throws Exception {
        Pipes p = start(1L << 30, 1, id -> { });
        Path out = root.resolve("stdio-every").resolve("merged"), viaCli = root.resolve("stdio-every").resolve("cli");
        Path stats = root.resolve("stdio-every").resolve("stats.safetensors");

        p.send(fx.plan("p", out));
        JsonNode plan = until(p.lines, finalOf("p")).getLast();
        assertEquals("result", plan.path("event").asText(), plan.toString());
        assertEquals("linear", plan.at("/result/method").asText());
        assertFalse(Files.exists(out), "a plan writes nothing");

        p.send(fx.merge("m", out));
        List<JsonNode> merge = until(p.lines, finalOf("m"));
        assertEquals(List.of("queued", "running", "start"), merge.subList(0, 3).stream().map(n -> n.path("event").asText()).toList());
        JsonNode done = merge.getLast();
        assertEquals("result", done.path("event").asText(), done.toString());
        int tensors = done.at("/result/tensors").asInt();
        assertEquals(tensors, merge.stream().filter(n -> n.path("event").asText().equals("tensor")).count());
        assertEquals(plan.at("/result/bytes_out").asLong(), Files.size(out.resolve("model.safetensors")), "the plan's byte count is what the merge wrote");
        assertEquals(0, MergeFixtures.cli("merge", fx.config.toString(), viaCli.toString(), "--backend", "java", "-q").exit());
        assertArrayEquals(Files.readAllBytes(viaCli.resolve("model.safetensors")), Files.readAllBytes(out.resolve("model.safetensors")));

        p.send(fx.calibrate("c", stats));
        JsonNode cal = until(p.lines, finalOf("c")).getLast();
        assertEquals("result", cal.path("event").asText(), cal.toString());
        assertTrue(Files.size(stats) > 0);

        p.send(fx.eval("e"));
        JsonNode ev = until(p.lines, finalOf("e")).getLast();
        TextLoss ref = Evaluator.textLoss(fx.fam.base(), fx.text, 32, 1);
        assertEquals(ref.meanNll(), ev.at("/result/text/mean_nll").asDouble(), ev.toString());

        p.send(fx.mergeEval("me"));
        JsonNode me = until(p.lines, finalOf("me")).getLast();
        TextLoss merged = Evaluator.textLoss(out, fx.text, 32, 1);
        assertEquals(merged.meanNll(), me.at("/result/eval/text/mean_nll").asDouble(), "the in-memory candidate scores as the merge on disk: " + me);
        assertEquals("memory", me.at("/result/mode").asText(), "a tiny candidate fits the default budget: " + me);

        p.send(fx.mergeEval("ml").replace("}", ",\"mode\":\"layers\",\"max_memory\":1073741824}"));
        List<JsonNode> layered = until(p.lines, finalOf("ml"));
        JsonNode ml = layered.getLast();
        assertEquals(merged.meanNll(), ml.at("/result/eval/text/mean_nll").asDouble(), "the candidate merged layer by layer scores alike: " + ml);
        assertEquals("layers", ml.at("/result/mode").asText(), ml.toString());
        assertTrue(ml.at("/result/peak_held_bytes").asLong() < me.at("/result/peak_held_bytes").asLong(), "one layer held, not the model: " + ml);
        assertTrue(layered.stream().anyMatch(n -> n.path("message").asText().startsWith("candidate mode: layers")), "the mode is said");

        p.send("{\"id\":\"s\",\"op\":\"status\"}");
        JsonNode st = until(p.lines, finalOf("s")).getLast();
        assertEquals(List.of("done", "done", "done", "done", "done", "done"), st.at("/result/jobs").findValuesAsText("state"));
        assertEquals(0, st.at("/result/memory_in_use_bytes").asLong());

        p.send("{\"id\":\"x\",\"op\":\"cancel\",\"target\":\"m\"}");
        JsonNode late = until(p.lines, finalOf("x")).getLast();
        assertFalse(late.at("/result/cancelling").asBoolean(), "a finished job is not cancelled: " + late);
    }

    @Test
    void malformedRequestsGetErrorLinesAndTheServerCarriesOn() throws Exception {
        Pipes p = start(1L << 30, 1, id -> { });
        String[][] bad = {
                {"this is not json", "not valid JSON"},
                {"[1, 2]", "must be a JSON object"},
                {"{\"op\":\"status\"}", "needs \"id\""},
                {"{\"id\":\"b1\",\"op\":\"frobnicate\"}", "'frobnicate' is unknown"},
                {"{\"id\":\"b2\",\"op\":\"merge\",\"config\":\"x.yml\",\"output\":\"o\",\"sed\":1}", "unknown key sed"},
                {"{\"id\":\"b3\",\"op\":\"merge\",\"config\":\"x.yml\",\"output\":\"o\",\"seed\":\"one\"}", "\"seed\" must be an integer"},
                {"{\"id\":\"b4\",\"op\":\"eval\",\"model\":\"m\",\"text\":\"t\",\"rows\":99999999999}", "out of range"},
                {"{\"id\":\"b5\",\"op\":\"cancel\"}", "\"target\" is missing"},
                {"{\"id\":\"b6\",\"op\":\"cancel\",\"target\":\"nobody\"}", "no job with id 'nobody'"},
                {"{\"id\":\"b7\",\"op\":\"merge_eval\",\"config\":\"x.yml\",\"text\":\"t\",\"mode\":\"sideways\"}", "\"mode\" sideways is not a candidate mode; use auto, memory or layers"},
        };
        for (String[] b : bad) {
            p.send(b[0]);
            JsonNode n = until(p.lines, x -> true).getLast();
            assertEquals("error", n.path("event").asText(), b[0]);
            assertEquals(2, n.path("exit_code").asInt());
            assertTrue(n.path("message").asText().contains(b[1]), b[0] + " -> " + n);
        }
        // a job that fails (its config does not exist) reports an error and leaves nothing
        Path out = root.resolve("stdio-bad").resolve("merged");
        p.send("{\"id\":\"f\",\"op\":\"merge\",\"config\":\"%s\",\"output\":\"%s\"}".formatted(root.resolve("missing.yml"), out));
        JsonNode f = until(p.lines, finalOf("f")).getLast();
        assertTrue(f.path("message").asText().contains("missing.yml"), f.toString());
        ServeFixtures.nothingLeftIn(out.getParent());
        p.send("{\"id\":\"alive\",\"op\":\"status\"}");
        assertEquals("result", until(p.lines, finalOf("alive")).getLast().path("event").asText());
    }

    @Test
    void cancellingAQueuedAndARunningJobLeavesNothing() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        Pipes p = start(1L << 30, 1, id -> {
            if (id.equals("m1")) await(hold);
        });
        Path dir = root.resolve("stdio-cancel");
        p.send(fx.merge("m1", dir.resolve("one")));
        until(p.lines, event("m1", "running"));          // m1 is admitted and held before it starts
        p.send(fx.merge("m2", dir.resolve("two")));
        JsonNode queued = until(p.lines, event("m2", "queued")).getLast();
        assertEquals(0, queued.path("position").asInt(), "m2 is first in the queue; m1 runs");

        p.send("{\"id\":\"c2\",\"op\":\"cancel\",\"target\":\"m2\"}");
        List<JsonNode> seen = until(p.lines, finalOf("m2"));
        assertTrue(seen.getLast().path("cancelled").asBoolean(), seen.toString());
        assertTrue(seen.stream().anyMatch(n -> n.path("id").asText().equals("c2") && n.at("/result/state").asText().equals("queued")), seen.toString());

        p.send("{\"id\":\"c1\",\"op\":\"cancel\",\"target\":\"m1\"}");
        until(p.lines, finalOf("c1"));
        hold.countDown();
        JsonNode m1 = until(p.lines, finalOf("m1")).getLast();
        assertEquals("error", m1.path("event").asText());
        assertTrue(m1.path("cancelled").asBoolean(), m1.toString());
        assertEquals(1, m1.path("exit_code").asInt());
        ServeFixtures.nothingLeftIn(dir);
    }

    @Test
    void jobsWaitForMemoryAndAJobOverTheBudgetIsRefused() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        // the plan's predicted peak for this family, so that the budget holds exactly one merge at a time
        Pipes probe = start(1L << 30, 2, id -> { });
        probe.send(fx.merge("p", root.resolve("stdio-budget").resolve("x")).replace("\"op\":\"merge\"", "\"op\":\"plan\"")); // as the merges: on java
        JsonNode plan = until(probe.lines, finalOf("p")).getLast();
        long est = plan.at("/result/predicted_peak_bytes").asLong();
        assertTrue(est > 0 && est != plan.at("/result/peak_working_bytes").asLong(), "admission by the predicted peak: " + plan);
        probe.close();

        Pipes p = start(est + est / 2, 2, id -> {
            if (id.equals("a")) await(hold);
        });
        Path dir = root.resolve("stdio-budget");
        p.send(fx.merge("a", dir.resolve("a")));
        assertEquals(est, until(p.lines, event("a", "running")).getLast().path("estimate_bytes").asLong());
        p.send(fx.merge("b", dir.resolve("b")));
        until(p.lines, event("b", "queued"));
        p.send("{\"id\":\"s\",\"op\":\"status\",\"target\":\"b\"}");
        JsonNode st = until(p.lines, finalOf("s")).getLast();
        assertEquals("queued", st.at("/result/state").asText(), "two jobs may run but the budget holds one: " + st);
        assertEquals(est, st.at("/result/memory_in_use_bytes").asLong());
        hold.countDown();
        List<JsonNode> rest = until(p.lines, finalOf("b"));
        List<JsonNode> all = new java.util.ArrayList<>(rest);
        if (all.stream().noneMatch(finalOf("a"))) all.addAll(until(p.lines, finalOf("a")));
        int aDone = indexOf(all, event("a", "done")), bRuns = indexOf(all, event("b", "running"));
        assertTrue(aDone >= 0 && aDone < bRuns, "b starts only after a's merge is done: " + all);
        assertEquals("result", rest.getLast().path("event").asText());
        assertTrue(all.stream().filter(finalOf("a")).allMatch(n -> n.path("event").asText().equals("result")), all.toString());

        Pipes small = start(est - 1, 1, id -> { });
        small.send(fx.merge("big", dir.resolve("big")));
        JsonNode refused = until(small.lines, finalOf("big")).getLast();
        assertTrue(refused.path("message").asText().contains("--memory-budget"), refused.toString());
        assertFalse(Files.exists(dir.resolve("big")));
        p.close();
    }

    @Test
    void twoJobsWhosePredictedPeaksFitTogetherRunTogether() throws Exception {
        Pipes probe = start(1L << 30, 2, id -> { });
        probe.send(fx.merge("p", root.resolve("stdio-together").resolve("x")).replace("\"op\":\"merge\"", "\"op\":\"plan\""));
        long est = until(probe.lines, finalOf("p")).getLast().at("/result/predicted_peak_bytes").asLong();
        probe.close();

        CountDownLatch hold = new CountDownLatch(1);
        Pipes p = start(2 * est, 2, id -> await(hold)); // both held once admitted: they must be admitted together
        Path dir = root.resolve("stdio-together");
        p.send(fx.merge("a", dir.resolve("a")));
        p.send(fx.merge("b", dir.resolve("b")));
        List<JsonNode> seen = new java.util.ArrayList<>();
        while (indexOf(seen, event("a", "running")) < 0 || indexOf(seen, event("b", "running")) < 0) {
            seen.addAll(until(p.lines, n -> n.path("event").asText().equals("running")));
        }
        assertEquals(est, seen.get(indexOf(seen, event("b", "running"))).path("estimate_bytes").asLong());
        p.send("{\"id\":\"s\",\"op\":\"status\"}");
        JsonNode st = until(p.lines, finalOf("s")).getLast();
        assertEquals(2 * est, st.at("/result/memory_in_use_bytes").asLong(), st.toString());
        assertEquals(2, st.at("/result/running").asInt(), st.toString());
        hold.countDown();
        List<JsonNode> rest = new java.util.ArrayList<>();
        while (indexOf(rest, finalOf("a")) < 0 || indexOf(rest, finalOf("b")) < 0) {
            rest.addAll(until(p.lines, n -> finalOf("a").test(n) || finalOf("b").test(n)));
        }
        for (String id : List.of("a", "b")) assertEquals("result", rest.get(indexOf(rest, finalOf(id))).path("event").asText(), rest.toString());
        p.close();
    }

    private static int indexOf(List<JsonNode> lines, java.util.function.Predicate<JsonNode> p) {
        for (int i = 0; i < lines.size(); i++) if (p.test(lines.get(i))) return i;
        return -1;
    }

    static void await(CountDownLatch l) {
        try {
            if (!l.await(60, java.util.concurrent.TimeUnit.SECONDS)) throw new IllegalStateException("test gate never opened");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
