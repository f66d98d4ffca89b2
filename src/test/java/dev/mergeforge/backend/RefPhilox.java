package dev.mergeforge.backend;

/**
 * An independent Philox-4x32-10 written from the paper (Salmon et al., SC'11, table of constants):
 * multipliers 0xD2511F53 / 0xCD9E8D57, Weyl key increments 0x9E3779B9 / 0xBB67AE85, ten rounds,
 * arithmetic in longs. The tests' oracle for every random drop.
 */
public final class RefPhilox {
    private RefPhilox() {}

    private static final long MASK = 0xffffffffL;

    /** The four 32-bit outputs (as unsigned longs) for counter (c0, c1, c2, c3) and key (k0, k1). */
    public static long[] block(long c0, long c1, long c2, long c3, long k0, long k1) {
        long[] x = {c0 & MASK, c1 & MASK, c2 & MASK, c3 & MASK};
        long a = k0 & MASK, b = k1 & MASK;
        for (int round = 0; round < 10; round++) {
            long p0 = 0xD2511F53L * x[0];
            long p1 = 0xCD9E8D57L * x[2];
            long hi0 = p0 >>> 32, lo0 = p0 & MASK, hi1 = p1 >>> 32, lo1 = p1 & MASK;
            x = new long[] {(hi1 ^ x[1] ^ a) & MASK, lo1, (hi0 ^ x[3] ^ b) & MASK, lo0};
            a = (a + 0x9E3779B9L) & MASK;
            b = (b + 0xBB67AE85L) & MASK;
        }
        return x;
    }

    /** The top 24 bits of element i's draw under a 64-bit key (element i = lane i%4 of counter i/4). */
    public static long uniform24(long key, long i) {
        long c = i / 4;
        long[] o = block(c & MASK, c >>> 32, 0, 0, key & MASK, key >>> 32);
        return o[(int) (i % 4)] >>> 8;
    }

    /** Bernoulli(p) keep decision: u24 < ceil(p·2^24). */
    public static boolean keep(long key, long i, double p) {
        double thr = Math.min(16777216.0, Math.ceil(p * 16777216.0));
        if (!(p >= 0)) thr = 0;
        return uniform24(key, i) < thr;
    }
}
