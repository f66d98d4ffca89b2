package dev.mergeforge.run;

import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.LongStream;

/** Finds NaN or infinite values in a tile (exponent bits all ones). */
final class NonFinite {
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;
    private static final long CHUNK = 1 << 18;

    private NonFinite() {}

    /** The lowest index holding NaN or ±Inf, or -1. */
    static long firstIndex(Tile t) {
        MemorySegment s = t.data();
        long n = t.size();
        long chunks = (n + CHUNK - 1) / CHUNK;
        AtomicLong first = new AtomicLong(Long.MAX_VALUE);
        LongStream.range(0, chunks).parallel().forEach(c -> {
            long lo = c * CHUNK, hi = Math.min(n, lo + CHUNK);
            for (long i = lo; i < hi; i++) {
                if ((s.getAtIndex(I, i) & 0x7f800000) == 0x7f800000) {
                    long idx = i;
                    first.accumulateAndGet(idx, Math::min);
                    return;
                }
            }
        });
        long f = first.get();
        return f == Long.MAX_VALUE ? -1 : f;
    }
}
