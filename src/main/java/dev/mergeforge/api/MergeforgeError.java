package dev.mergeforge.api;

import dev.mergeforge.errors.MergeforgeException;

/**
 * Why a call of {@link Mergeforge} failed: a one-line message naming the file, tensor or key and the
 * fix, and the exit code the command line would return for it (2 configuration or usage error,
 * 1 runtime failure). {@link #cancelled()} says the caller's {@link CancellationToken} stopped it.
 */
public final class MergeforgeError extends MergeforgeException {
    private final int exitCode;
    private final boolean cancelled;

    public MergeforgeError(String message, int exitCode, boolean cancelled, Throwable cause) {
        super(message, cause);
        if (exitCode != 1 && exitCode != 2) throw new IllegalArgumentException("exitCode " + exitCode + ": must be 1 (runtime) or 2 (configuration)");
        this.exitCode = exitCode;
        this.cancelled = cancelled;
    }

    static MergeforgeError cancelled(String what) {
        return new MergeforgeError(what + " cancelled; nothing was written", 1, true, null);
    }

    /** The same failure as a MergeforgeError (one-line message, its exit code). */
    static MergeforgeError of(RuntimeException e) {
        return switch (e) {
            case MergeforgeError me -> me;
            case MergeforgeException me -> new MergeforgeError(me.getMessage(), me.exitCode(), false, me);
            case java.io.UncheckedIOException io -> new MergeforgeError(oneLine(io.getMessage()), 1, false, io);
            default -> throw e;
        };
    }

    private static String oneLine(String s) {
        return s == null ? "input/output error" : s.replaceAll("\\s*\\R\\s*", " ").strip();
    }

    @Override public int exitCode() { return exitCode; }

    public boolean cancelled() { return cancelled; }
}
