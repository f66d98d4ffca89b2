package dev.mergeforge.api;

/**
 * Asks a running call to stop. A merge checks it before it starts and after every output tensor;
 * a calibration before it starts and once it has computed (its output is then not written); an
 * eval before it starts and between files. A stopped call throws {@link MergeforgeError} with
 * {@link MergeforgeError#cancelled()} true and leaves nothing at its output. Thread-safe.
 */
public final class CancellationToken {
    private volatile boolean cancelled;

    /** Requests cancellation; calling it again does nothing. */
    public void cancel() { cancelled = true; }

    public boolean isCancelled() { return cancelled; }

    /** Throws the cancellation error naming {@code what} (e.g. "merge into /out") if cancelled. */
    void check(String what) {
        if (cancelled) throw MergeforgeError.cancelled(what);
    }
}
