package dev.mergeforge.backend;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class PhiloxTest {

    @Test
    void referenceMatchesKnownAnswerOfRandom123() {
        // Random123 kat_vectors: philox4x32 10 rounds, counter 0, key 0
        long[] o = RefPhilox.block(0, 0, 0, 0, 0, 0);
        assertArrayEquals(new long[] {0x6627e8d5L, 0xe169c58dL, 0xbc57ac4cL, 0x9b00dbd8L}, o);
    }

    @Test
    void productionBlockMatchesKnownAnswer() {
        int[] out = new int[4];
        Philox.block(0, 0, 0, 0, out);
        assertArrayEquals(new int[] {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, out);
    }

    @Test
    void drawsMatchReferenceForRandomKeysAndIndices() {
        SplittableRandom r = new SplittableRandom(7);
        for (int t = 0; t < 2000; t++) {
            long key = r.nextLong();
            long i = t < 1000 ? t : r.nextLong() >>> 1;
            assertEquals(RefPhilox.uniform24(key, i), Philox.uniform24(key, i), "key " + key + " i " + i);
        }
    }

    @Test
    void threshold24IsCeilOfDensityTimes2To24() {
        for (double d : new double[] {0, 1e-9, 0.1, 0.3, 0.5, 0.9, 1, 1.5}) {
            assertEquals((long) Math.min(16777216.0, Math.ceil(d * 16777216.0)), Philox.threshold24(d), "d=" + d);
        }
        assertEquals(0, Philox.threshold24(Double.NaN));
    }

    @Test
    void keysDependOnSeedTensorAndModel() {
        long k = Philox.key(1, "a.weight", 0);
        assertEquals(k, Philox.key(1, "a.weight", 0));
        assertNotEquals(k, Philox.key(2, "a.weight", 0));
        assertNotEquals(k, Philox.key(1, "b.weight", 0));
        assertNotEquals(k, Philox.key(1, "a.weight", 1));
    }
}
