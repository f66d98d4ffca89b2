package dev.mergeforge.api;

import dev.mergeforge.run.Events;

/** The merger's event sink in front of a caller's listener; checks the cancellation token between tensors. */
final class ListenerEvents implements Events {
    private final EventListener listener;
    private final CancellationToken cancel;
    private final String what;

    ListenerEvents(EventListener listener, CancellationToken cancel, String what) {
        this.listener = listener;
        this.cancel = cancel;
        this.what = what;
    }

    @Override public void start(String method, int tensors, long bytesIn, long bytesOut, String backend) {
        listener.on(new Event.Started(method, tensors, bytesIn, bytesOut, backend));
        cancel.check(what);
    }

    @Override public void tensor(int index, int total, String name, long bytesIn, long bytesOut, double elapsed) {
        listener.on(new Event.TensorWritten(index, total, name, bytesIn, bytesOut, elapsed));
        // thrown on the merging thread between tensors: the merger closes its temporary output and stops
        cancel.check(what);
    }

    @Override public void note(String message) { listener.on(new Event.Note(message)); }

    @Override public void done(String outputDir, int tensors, long bytesIn, long bytesOut, double seconds, long peak, long rss) {
        listener.on(new Event.Finished(outputDir, tensors, bytesIn, bytesOut, seconds, peak, rss));
    }

    @Override public void error(String message, int exitCode) { listener.on(new Event.Failed(message, exitCode)); }
}
