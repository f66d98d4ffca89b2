package dev.mergeforge.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.PrintWriter;
import java.util.function.Consumer;

/**
 * Machine-readable events, one JSON object per line on the given writer (stdout for
 * {@code --events json}). Every object has "event" and "time" (seconds since the epoch); the
 * fields of each event are listed in docs/events.md.
 */
public final class JsonEvents implements Events {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Consumer<ObjectNode> sink;

    public JsonEvents(PrintWriter out) {
        this(n -> {
            out.println(n.toString());
            out.flush();
        });
    }

    /** Events handed over as objects (the server adds a request id before sending them). */
    public JsonEvents(Consumer<ObjectNode> sink) { this.sink = sink; }

    private ObjectNode event(String kind) {
        ObjectNode n = JSON.createObjectNode();
        n.put("event", kind);
        n.put("time", System.currentTimeMillis() / 1000.0);
        return n;
    }

    private synchronized void emit(ObjectNode n) { sink.accept(n); }

    @Override public void start(String method, int tensors, long bytesIn, long bytesOut, String backend) {
        emit(event("start").put("method", method).put("tensors", tensors).put("bytes_in", bytesIn)
                .put("bytes_out", bytesOut).put("backend", backend));
    }

    @Override public void tensor(int index, int total, String name, long bytesIn, long bytesOut, double elapsed) {
        emit(event("tensor").put("index", index).put("total", total).put("name", name).put("bytes_in", bytesIn)
                .put("bytes_out", bytesOut).put("elapsed_s", elapsed));
    }

    @Override public void note(String message) { emit(event("note").put("message", message)); }

    @Override public void done(String outputDir, int tensors, long bytesIn, long bytesOut, double seconds, long peak, long rss) {
        emit(event("done").put("output", outputDir).put("tensors", tensors).put("bytes_in", bytesIn)
                .put("bytes_out", bytesOut).put("seconds", seconds).put("peak_working_bytes", peak).put("peak_rss_bytes", rss));
    }

    @Override public void error(String message, int exitCode) {
        emit(event("error").put("message", message).put("exit_code", exitCode));
    }
}
