package dev.mergeforge.backend;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/**
 * Splits index ranges across a fork-join pool. Work is cut at fixed chunk boundaries, so every
 * result that depends on the order of operations (reductions) is the same for any thread count.
 */
public final class Parallel {
    /** Elements per task: big enough to amortise scheduling, small enough to balance 2-64 cores. */
    public static final long CHUNK = 1 << 16;

    private final ForkJoinPool pool;

    /** @param threads workers; 0 or less means one per core (the common pool would leave one core idle) */
    public Parallel(int threads) {
        this.pool = new ForkJoinPool(threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
    }

    public int threads() { return pool.getParallelism(); }

    /** A range body: handles [lo, hi). */
    @FunctionalInterface
    public interface Body { void run(long lo, long hi); }

    /** Runs body over [0, n) in chunks of {@code chunk} elements (chunk boundaries are multiples of chunk). */
    public void forRange(long n, long chunk, Body body) {
        if (n <= 0) return;
        long tasks = (n + chunk - 1) / chunk;
        if (tasks == 1) {
            body.run(0, n);
            return;
        }
        pool.invoke(new Split(0, tasks, n, chunk, body));
    }

    public void forRange(long n, Body body) { forRange(n, CHUNK, body); }

    private static final class Split extends RecursiveAction {
        private final long t0, t1, n, chunk;
        private final Body body;

        Split(long t0, long t1, long n, long chunk, Body body) {
            this.t0 = t0; this.t1 = t1; this.n = n; this.chunk = chunk; this.body = body;
        }

        @Override protected void compute() {
            if (t1 - t0 == 1) {
                long lo = t0 * chunk;
                body.run(lo, Math.min(n, lo + chunk));
                return;
            }
            long mid = (t0 + t1) >>> 1;
            invokeAll(new Split(t0, mid, n, chunk, body), new Split(mid, t1, n, chunk, body));
        }
    }

    public void shutdown() {
        pool.shutdown();
    }
}
