package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.api.CancellationToken;
import dev.mergeforge.api.Event;
import dev.mergeforge.api.EventListener;
import dev.mergeforge.api.Mergeforge;
import dev.mergeforge.api.MergeforgeError;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.run.JsonEvents;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The server's job table and admission rule (docs/protocol.md). Each merge, calibrate or eval
 * request becomes a job on its own thread: it estimates its working memory (a merge: the peak its
 * dry run predicts under the request's memory budget, docs/io.md "Memory budget"; calibrate and
 * eval: twice the model's safetensors bytes, its float32 weights; merge_eval: the merge's estimate
 * plus the candidate's, in memory or layer by layer: {@link Mergeforge#candidateBytes}),
 * waits in a first-in-first-out queue until it is at the head, fewer than {@code maxJobs} jobs run
 * and its estimate fits in what the running jobs leave of the budget, then runs through
 * {@link Mergeforge}. A job that alone exceeds the budget is refused. Plans run at once, cancel and
 * status are answered on the caller's thread. Every request gets exactly one final line: "result"
 * or "error".
 */
public final class Jobs {
    /** Where one request's response lines go; called from several threads, so implementations synchronise. */
    @FunctionalInterface
    public interface Sink {
        void send(ObjectNode line);
    }

    enum State { QUEUED, RUNNING, DONE, FAILED, CANCELLED }

    private static final int REMEMBERED = 1000;

    private static final class Job {
        final Request request;
        final Sink sink;
        final CancellationToken cancel = new CancellationToken();
        State state = State.QUEUED;       // guarded by Jobs.this
        long estimate = -1;               // guarded by Jobs.this; -1 until known

        Job(Request request, Sink sink) {
            this.request = request;
            this.sink = sink;
        }

        String id() { return request.id(); }
    }

    private final long budget;
    private final int maxJobs;
    private final Consumer<String> beforeStart;
    private final Map<String, Job> jobs = new LinkedHashMap<>();
    private final ArrayDeque<Job> queue = new ArrayDeque<>();
    private long inUse;
    private int running;
    private int active;

    public Jobs(long budgetBytes, int maxJobs) { this(budgetBytes, maxJobs, id -> { }); }

    /** {@code beforeStart} runs on a job's thread once it is admitted, before it starts (tests hold a job there). */
    Jobs(long budgetBytes, int maxJobs, Consumer<String> beforeStart) {
        if (budgetBytes <= 0) throw new IllegalArgumentException("memory budget " + budgetBytes + " must be positive");
        if (maxJobs < 1) throw new IllegalArgumentException("maxJobs " + maxJobs + " must be at least 1");
        this.budget = budgetBytes;
        this.maxJobs = maxJobs;
        this.beforeStart = beforeStart;
    }

    public long budgetBytes() { return budget; }

    /**
     * Handles one request line: answers it, or starts its job, whose lines then go to {@code sink}.
     * Never throws; returns false when the request was refused before anything ran (malformed, an
     * id in use), its error line already sent.
     */
    public boolean submit(String line, Sink sink) {
        Request r;
        try {
            r = RequestParser.parse(line);
        } catch (RequestParser.BadRequest e) {
            sink.send(error(e.id, e.getMessage(), e.exitCode(), false));
            return false;
        }
        switch (r) {
            case Request.Cancel c -> cancel(c, sink);
            case Request.Status s -> sink.send(status(s));
            case Request.Merge m -> { return start(m, sink); }
            case Request.Plan p -> { return start(p, sink); }
            case Request.Calibrate c -> { return start(c, sink); }
            case Request.Eval e -> { return start(e, sink); }
            case Request.MergeEval m -> { return start(m, sink); }
        }
        return true;
    }

    private boolean start(Request r, Sink sink) {
        Job j = new Job(r, sink);
        synchronized (this) {
            Job old = jobs.get(r.id());
            if (old != null && (old.state == State.QUEUED || old.state == State.RUNNING)) {
                sink.send(error(r.id(), "id '" + r.id() + "' belongs to a job that is still " + old.state.name().toLowerCase()
                        + "; give every request its own id", 2, false));
                return false;
            }
            jobs.remove(r.id());
            jobs.put(r.id(), j);
            forgetOld();
            active++;
            if (r instanceof Request.Plan) {
                j.state = State.RUNNING; // plans run at once, outside the queue
            } else {
                queue.addLast(j);
                sink.send(line(r.id(), "queued").put("op", r.op()).put("position", queue.size() - 1));
            }
        }
        Thread.ofPlatform().name("mergeforge-job-" + r.id()).daemon(true).start(() -> run(j));
        return true;
    }

    private void forgetOld() {
        for (Iterator<Job> it = jobs.values().iterator(); it.hasNext() && jobs.size() > REMEMBERED; ) {
            Job j = it.next();
            if (j.state != State.QUEUED && j.state != State.RUNNING) it.remove();
        }
    }

    private void run(Job j) {
        ObjectNode last;
        State end;
        try {
            ObjectNode result = switch (j.request) {
                case Request.Plan p -> Json.plan(Mergeforge.plan(p.request(), listener(j)));
                default -> admittedRun(j);
            };
            last = line(j.id(), "result").put("op", j.request.op()).set("result", result);
            end = State.DONE;
        } catch (MergeforgeException e) {
            boolean cancelled = e instanceof MergeforgeError me && me.cancelled();
            last = error(j.id(), e.getMessage(), e.exitCode(), cancelled);
            end = cancelled ? State.CANCELLED : State.FAILED;
        } catch (UncheckedIOException e) {
            last = error(j.id(), String.valueOf(e.getMessage()).replaceAll("\\s*\\R\\s*", " "), 1, false);
            end = State.FAILED;
        } catch (RuntimeException | Error e) {
            last = error(j.id(), "internal error " + e + " (a bug in mergeforge: rerun the request with `mergeforge --debug` and report it)", 1, false);
            end = State.FAILED;
        }
        synchronized (this) {
            queue.remove(j);
            j.state = end;
        }
        try {
            j.sink.send(last);
        } finally {
            // only once its final line is out does the job stop counting: drain() returning lets the process exit
            synchronized (this) {
                active--;
                notifyAll();
            }
        }
    }

    private ObjectNode admittedRun(Job j) {
        long est = estimate(j.request);
        admit(j, est);
        try {
            beforeStart.accept(j.id());
            return switch (j.request) {
                case Request.Merge m -> Json.merge(Mergeforge.merge(m.request(), listener(j), j.cancel));
                case Request.Calibrate c -> Json.calibrate(Mergeforge.calibrate(c.request(), listener(j), j.cancel));
                case Request.Eval e -> Json.eval(Mergeforge.eval(e.request(), listener(j), j.cancel));
                case Request.MergeEval m -> Json.mergeEval(Mergeforge.mergeAndEval(m.request(), listener(j), j.cancel));
                case Request.Plan p -> throw new IllegalStateException("plan " + p.id() + " is not admitted");
                case Request.Cancel c -> throw new IllegalStateException("cancel " + c.id() + " is not a job");
                case Request.Status s -> throw new IllegalStateException("status " + s.id() + " is not a job");
            };
        } finally {
            synchronized (this) {
                running--;
                inUse -= est;
                notifyAll();
            }
        }
    }

    /** Waits until the job is at the head of the queue and fits; throws if it is cancelled or can never fit. */
    private synchronized void admit(Job j, long est) {
        j.estimate = est;
        if (est > budget) {
            throw new MergeforgeError("job '" + j.id() + "' needs about " + est + " bytes of working memory but the server's memory budget is "
                    + budget + " bytes; restart `mergeforge serve` with a larger --memory-budget", 2, false, null);
        }
        while (!(queue.peekFirst() == j && running < maxJobs && inUse + est <= budget)) {
            if (j.cancel.isCancelled()) throw new MergeforgeError(j.request.op() + " '" + j.id() + "' cancelled while queued; nothing was written", 1, true, null);
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new MergeforgeError(j.request.op() + " '" + j.id() + "' interrupted while queued; nothing was written", 1, true, e);
            }
        }
        queue.removeFirst();
        running++;
        inUse += est;
        j.state = State.RUNNING;
        notifyAll();
        j.sink.send(line(j.id(), "running").put("estimate_bytes", est));
    }

    /** Working memory a job needs at most, by the rule in the class comment. */
    private static long estimate(Request r) {
        return switch (r) {
            // what the dry run predicts under the request's --max-memory: the chunked methods' peak follows the budget, not the tensor
            case Request.Merge m -> Mergeforge.plan(m.request(), EventListener.NONE).predictedPeakBytes();
            case Request.Calibrate c -> 2 * weightBytes(c.request().model());
            case Request.Eval e -> 2 * weightBytes(e.request().model());
            // the merge's working memory plus the candidate in memory, or one layer of it at a time (the mode it runs in)
            case Request.MergeEval m -> Mergeforge.candidateBytes(m.request());
            case Request.Plan p -> 0;
            case Request.Cancel c -> 0;
            case Request.Status s -> 0;
        };
    }

    private static long weightBytes(String model) {
        Path dir;
        try (Checkpoint c = Checkpoint.open(model)) {
            dir = c.dir();
        }
        try (Stream<Path> files = Files.list(dir)) {
            long sum = 0;
            for (Path p : files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).toList()) sum += Files.size(p);
            return sum;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the weights of " + dir + ": " + e.getMessage() + "; check its permissions", e);
        }
    }

    /** The job's events as docs/events.md lines tagged with its id; failures are reported once, by the final error line. */
    private static EventListener listener(Job j) {
        EventListener json = EventListener.of(new JsonEvents(n -> j.sink.send(tagged(j.id(), n))));
        return e -> {
            if (!(e instanceof Event.Failed)) json.on(e);
        };
    }

    /**
     * Answers a cancel, then cancels: the answer is sent before the token is set, under the lock a
     * queued job waits on, so the cancel's result line always comes before the job's own final line
     * (docs/protocol.md) — a queued job woke and reported first when the answer was sent after.
     */
    private synchronized void cancel(Request.Cancel c, Sink sink) {
        Job j = jobs.get(c.target());
        if (j == null) {
            sink.send(error(c.id(), "cancel: no job with id '" + c.target() + "'; send {\"op\": \"status\"} to list the jobs", 2, false));
            return;
        }
        // a plan is not stopped (it reads headers only and answers quickly)
        boolean live = (j.state == State.QUEUED || j.state == State.RUNNING) && !(j.request instanceof Request.Plan);
        ObjectNode r = Json.MAPPER.createObjectNode().put("target", c.target()).put("state", j.state.name().toLowerCase()).put("cancelling", live);
        sink.send(line(c.id(), "result").put("op", "cancel").set("result", r));
        if (live) {
            j.cancel.cancel();
            notifyAll();
        }
    }

    private synchronized ObjectNode status(Request.Status s) {
        ObjectNode r = Json.MAPPER.createObjectNode();
        if (s.target() != null) {
            Job j = jobs.get(s.target());
            if (j == null) return error(s.id(), "status: no job with id '" + s.target() + "'; send {\"op\": \"status\"} to list the jobs", 2, false);
            describe(j, r);
        } else {
            ArrayNode list = r.putArray("jobs");
            jobs.values().forEach(j -> describe(j, list.addObject()));
        }
        r.put("memory_budget_bytes", budget).put("memory_in_use_bytes", inUse).put("running", running).put("queued", queue.size());
        return line(s.id(), "result").put("op", "status").set("result", r);
    }

    private static void describe(Job j, ObjectNode n) {
        n.put("id", j.id()).put("op", j.request.op()).put("state", j.state.name().toLowerCase());
        if (j.estimate >= 0) n.put("estimate_bytes", j.estimate);
    }

    /** Jobs queued or running. */
    public synchronized int active() { return active; }

    /** Waits until no job is queued or running (used when stdin closes). */
    public synchronized void drain() throws InterruptedException {
        while (active > 0) wait();
    }

    /** Cancels every job that has not finished. */
    public synchronized void cancelAll() {
        for (Job j : jobs.values()) j.cancel.cancel();
        notifyAll();
    }

    static ObjectNode line(String id, String event) {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("id", id);
        n.put("event", event);
        return n;
    }

    private static ObjectNode tagged(String id, ObjectNode event) {
        ObjectNode n = Json.MAPPER.createObjectNode();
        n.put("id", id);
        n.setAll(event);
        return n;
    }

    static ObjectNode error(String id, String message, int exitCode, boolean cancelled) {
        return line(id, "error").put("message", message).put("exit_code", exitCode).put("cancelled", cancelled);
    }
}
