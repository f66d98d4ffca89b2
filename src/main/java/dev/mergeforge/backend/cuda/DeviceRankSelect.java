package dev.mergeforge.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * keepRankRange on the GPU, exactly as the Java backend's RankSelect: the |x| bit patterns at the
 * two boundary ranks are found by a 3-pass radix select (11, 10, 10 bits of the 31 magnitude bits;
 * both boundaries share each pass), then the entries equal to a boundary value are ranked in index
 * order (per-chunk counts, an exclusive prefix on the host, a ballot scan inside each chunk) and
 * everything outside [from, to) is zeroed. The digit widths differ from RankSelect's 15 + 16 but
 * the selected value and the count above it are the same for any digit split.
 */
final class DeviceRankSelect {
    private static final int[] SHIFT = {20, 10, 0};
    private static final int[] BITS = {11, 10, 10};
    private static final int BINS = 2048;
    /** Elements per CUDA block of the chunk kernels (MF_CHUNK in select.cu). */
    static final int CHUNK = 4096;
    private static final int CHUNK_THREADS = Kernel.KEEP_RANK_MASK.block;

    private final DeviceOps ops;

    DeviceRankSelect(DeviceOps ops) { this.ops = ops; }

    /** A boundary: |x| bits of the entry at the rank, how many are strictly larger, how many are equal. */
    record Selected(int bits, long greater, long equal) {}

    /**
     * Selects ranks r0 and r1 (descending |x|) in one sweep per digit; r0 &lt; 0 means only r1.
     * Returns {sel(r0) or null, sel(r1)}.
     */
    Selected[] select(DeviceBuffer x, long n, long r0, long r1) {
        boolean two = r0 >= 0;
        long[] ranks = two ? new long[] {r0, r1} : new long[] {r1};
        int t = ranks.length;
        int[] prefix = new int[t];
        long[] greater = new long[t];
        long[] equal = new long[t];
        DeviceBuffer hist = ops.pool.borrow(8L * 2 * BINS, "radix histogram");
        try {
            for (int pass = 0; pass < SHIFT.length; pass++) {
                long[] h = histogram(x, n, pass, prefix, hist);
                for (int j = 0; j < t; j++) {
                    // walk bins from the largest digit down until the rank falls inside one
                    int bin = (1 << BITS[pass]) - 1;
                    for (; bin > 0; bin--) {
                        long c = h[j * BINS + bin];
                        if (greater[j] + c > ranks[j]) break;
                        greater[j] += c;
                    }
                    equal[j] = h[j * BINS + bin];
                    prefix[j] = (prefix[j] << BITS[pass]) | bin;
                }
            }
        } finally {
            ops.pool.release(hist);
        }
        Selected last = new Selected(prefix[t - 1], greater[t - 1], equal[t - 1]);
        return new Selected[] {two ? new Selected(prefix[0], greater[0], equal[0]) : null, last};
    }

    private long[] histogram(DeviceBuffer x, long n, int pass, int[] prefix, DeviceBuffer hist) {
        int t = prefix.length;
        ops.dev.zero(hist, 8L * 2 * BINS);
        ops.launcher.launch(Kernel.RADIX_HIST, DeviceOps.grid(n, DeviceOps.THREADS * 16), DeviceOps.THREADS,
                x, n, SHIFT[pass], BITS[pass], prefix[0], prefix[t - 1], t, hist);
        long[] h = new long[2 * BINS];
        ops.dev.download(hist, MemorySegment.ofArray(h));
        return h;
    }

    /** Zeroes every entry of x (n floats) whose magnitude rank is outside [from, to); 0 &lt; to - from &lt; n. */
    void keepRankRange(DeviceBuffer x, long n, long from, long to) {
        boolean hasUpper = from > 0;
        Selected[] s = select(x, n, hasUpper ? from : -1, to - 1);
        int vUp = hasUpper ? s[0].bits() : Integer.MAX_VALUE;
        long skipUp = hasUpper ? from - s[0].greater() : 0;
        int vDn = s[1].bits();
        long keepDn = to - s[1].greater();
        long chunks = (n + CHUNK - 1) / CHUNK;
        if (chunks > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("tensor too large for keepRankRange: " + n);
        DeviceBuffer cntUp = ops.pool.borrow(8 * chunks, "tie counts");
        DeviceBuffer cntDn = ops.pool.borrow(8 * chunks, "tie counts");
        try {
            // how many entries of each chunk equal each boundary value
            ops.launcher.launch(Kernel.EQ_COUNT, chunks, CHUNK_THREADS, x, n, vUp, hasUpper ? 1 : 0, vDn, cntUp, cntDn);
            long[] up = new long[(int) chunks], dn = new long[(int) chunks];
            ops.dev.download(cntUp, MemorySegment.ofArray(up));
            ops.dev.download(cntDn, MemorySegment.ofArray(dn));
            // exclusive prefix: equal entries before each chunk
            exclusivePrefix(up);
            exclusivePrefix(dn);
            ops.dev.upload(MemorySegment.ofArray(up), cntUp);
            ops.dev.upload(MemorySegment.ofArray(dn), cntDn);
            ops.launcher.launch(Kernel.KEEP_RANK_MASK, chunks, CHUNK_THREADS, x, n, vUp, hasUpper ? 1 : 0, skipUp, vDn, keepDn, cntUp, cntDn);
            ops.dev.sync();
        } finally {
            ops.pool.release(cntUp);
            ops.pool.release(cntDn);
        }
    }

    static void exclusivePrefix(long[] a) {
        long run = 0;
        for (int i = 0; i < a.length; i++) {
            long c = a[i];
            a[i] = run;
            run += c;
        }
    }
}
