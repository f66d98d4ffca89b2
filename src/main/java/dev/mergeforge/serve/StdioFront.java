package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;

/**
 * The protocol over a parent process's pipes: one JSON request per line in, response lines of all
 * requests interleaved out (each tagged with its request's id). Blank lines are ignored.
 */
public final class StdioFront {
    private StdioFront() {}

    /** Reads requests until {@code in} ends; jobs keep running afterwards (see {@link Jobs#drain()}). */
    public static void serve(BufferedReader in, PrintWriter out, Jobs jobs) {
        Jobs.Sink sink = lineWriter(out);
        try {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                if (!line.isBlank()) jobs.submit(line, sink);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read requests from stdin: " + e.getMessage() + "; the parent process closed the pipe", e);
        }
    }

    /** A sink writing whole lines, one at a time, to {@code out}. */
    public static Jobs.Sink lineWriter(PrintWriter out) {
        return (ObjectNode n) -> {
            String s = n.toString();
            synchronized (out) {
                out.println(s);
                out.flush();
            }
        };
    }
}
