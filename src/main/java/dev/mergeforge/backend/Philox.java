package dev.mergeforge.backend;

import java.nio.charset.StandardCharsets;

/**
 * Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), the
 * counter-based generator behind every random drop. Element i of a tensor draws lane (i &amp; 3) of
 * the block for counter (lo32(i &gt;&gt; 2), hi32(i &gt;&gt; 2), 0, 0) under the 64-bit key (lo32, hi32):
 * the same numbers on every backend, in any order, on any thread count.
 */
public final class Philox {
    private static final int M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private static final int W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    private Philox() {}

    /** The 4 outputs for one counter block (c0, c1, 0, 0) under key (k0, k1). */
    public static void block(int c0, int c1, int k0, int k1, int[] out) {
        int x0 = c0, x1 = c1, x2 = 0, x3 = 0;
        for (int r = 0; r < 10; r++) {
            long p0 = (M0 & 0xffffffffL) * (x0 & 0xffffffffL);
            long p1 = (M1 & 0xffffffffL) * (x2 & 0xffffffffL);
            int y0 = (int) (p1 >>> 32) ^ x1 ^ k0;
            int y1 = (int) p1;
            int y2 = (int) (p0 >>> 32) ^ x3 ^ k1;
            int y3 = (int) p0;
            x0 = y0; x1 = y1; x2 = y2; x3 = y3;
            k0 += W0;
            k1 += W1;
        }
        out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
    }

    /** The raw 32-bit draw for element i. */
    public static int draw(long key, long i) {
        int[] o = new int[4];
        long c = i >>> 2;
        block((int) c, (int) (c >>> 32), (int) key, (int) (key >>> 32), o);
        return o[(int) (i & 3)];
    }

    /**
     * Draws for increasing element indices, one Philox block per four elements: the cheap way to
     * walk a range (not thread-safe; one cursor per worker).
     */
    public static final class Cursor {
        private final int k0, k1;
        private final int[] blk = new int[4];
        private long block = -1;

        public Cursor(long key) {
            this.k0 = (int) key;
            this.k1 = (int) (key >>> 32);
        }

        /** The top 24 bits of element i's draw, as {@link #uniform24(long, long)}. */
        public int uniform24(long i) {
            long c = i >>> 2;
            if (c != block) {
                Philox.block((int) c, (int) (c >>> 32), k0, k1, blk);
                block = c;
            }
            return blk[(int) (i & 3)] >>> 8;
        }
    }

    /** The top 24 bits of element i's draw: a uniform integer in [0, 2^24). */
    public static int uniform24(long key, long i) { return draw(key, i) >>> 8; }

    /** The keep threshold of a Bernoulli(density) draw: element kept iff uniform24 &lt; threshold24(density). */
    public static long threshold24(double density) {
        if (!(density >= 0)) return 0;
        return (long) Math.min(16777216.0, Math.ceil(density * 16777216.0));
    }

    /** The key of one model's draws for one tensor: seed, tensor name and model index mixed by splitmix64. */
    public static long key(long seed, String tensorName, int modelIndex) {
        long h = 0xcbf29ce484222325L; // FNV-1a over the UTF-8 name
        for (byte b : tensorName.getBytes(StandardCharsets.UTF_8)) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        return mix(mix(seed ^ h) + 0x9E3779B97F4A7C15L * (modelIndex + 1));
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
