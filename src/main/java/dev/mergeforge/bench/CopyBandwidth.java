package dev.mergeforge.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The machine's memory copy bandwidth, measured in the same run as the merges it is compared
 * with: the best of a few MemorySegment copies of a buffer much larger than the caches.
 */
public final class CopyBandwidth {
    private CopyBandwidth() {}

    /** Bytes per second (read + write counted once each: a copy of n bytes moves 2n). */
    public static double measure(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment src = a.allocate(bytes, 64), dst = a.allocate(bytes, 64);
            src.fill((byte) 1);
            dst.fill((byte) 0);
            double best = 0;
            for (int rep = 0; rep < 5; rep++) {
                long t0 = System.nanoTime();
                MemorySegment.copy(src, 0, dst, 0, bytes);
                long dt = System.nanoTime() - t0;
                best = Math.max(best, 2.0 * bytes / (dt / 1e9));
            }
            return best;
        }
    }
}
