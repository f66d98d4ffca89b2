package dev.mergeforge.tensor;

import java.util.Locale;
import java.util.function.Consumer;

/**
 * The buffers one merge holds, counted against what its memory budget allows them (docs/io.md,
 * "Memory budget": the budget less the fixed part for the JVM and libraries): pooled tiles, staged
 * input chunks, writer blocks. The planner predicts the peak before anything runs and sizes chunks
 * so the prediction fits; holding more than the allowance therefore means the prediction is wrong —
 * a bug, not a user error. With assertions enabled (the test suite) or
 * {@code -Dmergeforge.strict-budget=true} it is an internal error at the allocation that crossed
 * the line; otherwise the merge goes on and the log says so once, asking for a report.
 *
 * <p>Thread-safe: the read-ahead and writer threads allocate while the merge thread works.
 */
public final class MemoryLedger {
    private final long allowance;
    private final boolean strict;
    private final Consumer<String> note;
    private long held, peak;
    private boolean noted;

    /**
     * @param allowance bytes of buffers the merge may hold ({@code Long.MAX_VALUE}: no budget)
     * @param note      where the one lenient-mode note goes
     */
    public MemoryLedger(long allowance, Consumer<String> note) {
        this(allowance, note, MemoryLedger.class.desiredAssertionStatus() || Boolean.getBoolean("mergeforge.strict-budget"));
    }

    public MemoryLedger(long allowance, Consumer<String> note, boolean strict) {
        if (allowance < 0) throw new IllegalArgumentException("allowance of " + allowance + " bytes");
        this.allowance = allowance;
        this.note = note;
        this.strict = strict;
    }

    /** No budget: counts, never complains. */
    public static MemoryLedger unlimited() { return new MemoryLedger(Long.MAX_VALUE, m -> { }, false); }

    /** Counts {@code bytes} newly held for {@code what}; past the allowance, the internal error or note of the class comment. */
    public void charge(long bytes, String what) {
        String message = null;
        synchronized (this) {
            held = Math.addExact(held, bytes);
            peak = Math.max(peak, held);
            if (held > allowance && (strict || !noted)) {
                noted = true;
                message = String.format(Locale.ROOT, "internal error: the merge holds %d bytes of buffers (the last %d for %s), past the %d its"
                        + " memory budget allows them; the predicted peak is wrong (a bug in mergeforge: please report it with the config)",
                        held, bytes, what, allowance);
            }
        }
        if (message == null) return;
        if (strict) throw new IllegalStateException(message);
        note.accept(message);
    }

    /** {@code bytes} given back. */
    public synchronized void credit(long bytes) { held -= bytes; }

    /** Bytes that may still be charged before the allowance is crossed. */
    public synchronized long room() { return allowance - held; }

    public synchronized long held() { return held; }

    /** Most bytes held at once. */
    public synchronized long peak() { return peak; }

    public long allowance() { return allowance; }
}
