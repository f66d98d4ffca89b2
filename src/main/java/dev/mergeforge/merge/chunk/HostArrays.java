package dev.mergeforge.merge.chunk;

import java.util.ArrayList;
import java.util.List;

/**
 * Float64 arrays on the Java heap that a merge's chunked programs hand on from tensor to tensor
 * (RegMean's factor, shrunk Gram and right-hand sides: docs/data-informed.md, "Memory"). One tensor
 * is merged at a time; each Linear's solve of width in needs the same 8·in² arrays as the one
 * before, and allocating them afresh leaves the last ones as garbage the collector frees when it
 * likes: the heap grows past what the plan predicts. Arrays given back are handed out again to the
 * next taker of the same length; a take of a length no free array has drops the free ones (a
 * narrower or wider Linear needs other arrays) before allocating. Lifetime: the merge's; nothing is
 * held once it is dropped. Not thread-safe: the merge takes and gives back on one thread at a time.
 */
public final class HostArrays {
    private final List<double[]> free = new ArrayList<>();
    private long allocated;

    /** An array of exactly {@code length} doubles, its contents unspecified: a free one of that length, else a new one. */
    public double[] take(int length) {
        for (int i = 0; i < free.size(); i++) {
            if (free.get(i).length == length) return free.remove(i);
        }
        // none fits: the free arrays are for another width, and would stay beside the new one
        free.clear();
        allocated += 8L * length;
        return new double[length];
    }

    /** Gives {@code a} back for a later {@link #take}; the caller no longer reads or writes it. */
    public void give(double[] a) {
        for (double[] f : free) if (f == a) throw new IllegalStateException("array of " + a.length + " doubles given back twice");
        free.add(a);
    }

    /** Bytes allocated so far (each new array once; reuses add nothing): what the tests check the reuse with. */
    public long allocatedBytes() { return allocated; }

    /** Bytes of the free arrays held for reuse. */
    public long freeBytes() {
        long b = 0;
        for (double[] f : free) b += 8L * f.length;
        return b;
    }
}
