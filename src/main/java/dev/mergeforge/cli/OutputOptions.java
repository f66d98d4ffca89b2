package dev.mergeforge.cli;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.run.Events;
import dev.mergeforge.run.JsonEvents;
import dev.mergeforge.run.Progress;
import picocli.CommandLine.Option;

import java.io.PrintWriter;

/** Options of every command that writes a model: replacing the output and how progress is reported. */
final class OutputOptions {
    @Option(names = "--overwrite", description = "Replace the output directory if it exists.")
    boolean overwrite;

    @Option(names = "--events", paramLabel = "json", description = "Print machine-readable events, one JSON object per line, on stdout.")
    String events;

    @Option(names = {"-q", "--quiet"}, description = "No progress output.")
    boolean quiet;

    /** JSON events on stdout with --events json, else human progress on stderr (nothing with --quiet). */
    Events events(PrintWriter out, PrintWriter err) {
        if (events != null && !events.equals("json")) {
            throw new ConfigException("--events " + events + ": the only event format is json; pass --events json");
        }
        return events != null ? new JsonEvents(out) : new Progress(err, quiet);
    }

    /** True when a person reads stderr (no JSON events, not quiet). */
    boolean chatty() { return events == null && !quiet; }
}
