package dev.mergeforge.api;

import dev.mergeforge.run.Events;

/** Receives a call's {@link Event}s on the thread that runs the call. Must not block for long. */
@FunctionalInterface
public interface EventListener {
    void on(Event event);

    /** A listener that drops every event. */
    EventListener NONE = e -> { };

    /** Forwards to one of mergeforge's own event sinks (human progress or JSON lines). */
    static EventListener of(Events sink) {
        return e -> {
            switch (e) {
                case Event.Started s -> sink.start(s.method(), s.tensors(), s.bytesIn(), s.bytesOut(), s.backend());
                case Event.TensorWritten t -> sink.tensor(t.index(), t.total(), t.name(), t.bytesIn(), t.bytesOut(), t.elapsedSeconds());
                case Event.Note n -> sink.note(n.message());
                case Event.Warning w -> sink.note("warning: " + w.message());
                case Event.Budget b -> sink.note(b.line());
                case Event.Finished f -> sink.done(f.output(), f.tensors(), f.bytesIn(), f.bytesOut(), f.seconds(), f.peakWorkingBytes(), f.peakRssBytes());
                case Event.Failed f -> sink.error(f.message(), f.exitCode());
            }
        };
    }
}
