package dev.mergeforge.run;

import java.io.PrintWriter;
import java.util.Locale;

/** Human progress on stderr: a line every second or so with tensors/s and GB/s read. */
public final class Progress implements Events {
    private final PrintWriter err;
    private final boolean quiet;
    private long lastPrint;
    private long bytesSoFar;

    public Progress(PrintWriter err, boolean quiet) {
        this.err = err;
        this.quiet = quiet;
    }

    @Override public void start(String method, int tensors, long bytesIn, long bytesOut, String backend) {
        if (quiet) return;
        err.printf(Locale.ROOT, "merging %d tensors with %s on the %s backend: %.2f GB to read, %.2f GB to write%n",
                tensors, method, backend, bytesIn / 1e9, bytesOut / 1e9);
        err.flush();
    }

    @Override public synchronized void tensor(int index, int total, String name, long bytesIn, long bytesOut, double elapsed) {
        bytesSoFar += bytesIn;
        long now = System.nanoTime();
        if (quiet || (now - lastPrint < 1_000_000_000L && index + 1 < total)) return;
        lastPrint = now;
        err.printf(Locale.ROOT, "  [%d/%d] %.1f tensors/s, %.2f GB/s read — %s%n", index + 1, total,
                (index + 1) / Math.max(elapsed, 1e-9), bytesSoFar / 1e9 / Math.max(elapsed, 1e-9), name);
        err.flush();
    }

    @Override public void note(String message) {
        err.println("note: " + message);
        err.flush();
    }

    @Override public void done(String outputDir, int tensors, long bytesIn, long bytesOut, double seconds, long peak, long rss) {
        if (quiet) return;
        err.printf(Locale.ROOT, "wrote %s: %d tensors in %.2f s (%.2f GB/s read), working memory peak %.1f MB, peak RSS %.1f MB%n",
                outputDir, tensors, seconds, bytesIn / 1e9 / Math.max(seconds, 1e-9), peak / 1e6, rss / 1e6);
        err.flush();
    }

    @Override public void error(String message, int exitCode) {}
}
