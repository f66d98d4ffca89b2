package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.backend.PortableOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link FloatRanks} (arcee_fusion's chunked quantiles) against a plain sort of the whole vector
 * (Float.compare order: −0 below +0), fed in chunks of several sizes with a partial last one, on
 * values with many ties, both signs, ±0, values sharing their high 16 bits and ranks in one bin.
 */
class FloatRanksTest {

    private static float[] values(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = switch (r.nextInt(5)) {
                case 0 -> (r.nextInt(9) - 4) / 4f;                             // ties, ±0 from 0/4 and the sign flip below
                case 1 -> Float.intBitsToFloat(0x3f80_0000 | r.nextInt(64));    // one high-16 bin, different low bits
                case 2 -> -0f;
                default -> (float) (r.nextGaussian() * 3);
            };
        }
        return x;
    }

    /** The values at the ranks, by sorting the whole vector. */
    private static float[] sorted(float[] x, long[] ranks) {
        float[] s = x.clone();
        Arrays.sort(s);
        float[] v = new float[ranks.length];
        for (int i = 0; i < ranks.length; i++) v[i] = s[(int) ranks[i]];
        return v;
    }

    /** Both passes over chunks of {@code chunk} elements, the last partial. */
    private static float[] chunked(float[] x, long[] ranks, int chunk) {
        FloatRanks q = new FloatRanks(x.length, ranks);
        for (int pass = 0; pass < 2; pass++) {
            for (int off = 0; off < x.length; off += chunk) {
                // the chunk's counts added by the histogram op, as arcee_fusion's passes add them
                Tile part = Tile.ofArray(Arrays.copyOfRange(x, off, Math.min(x.length, off + chunk)));
                if (pass == 0) FusionLoops.orderHistogram(PortableOps.COMMON, part, -1, q.highHistogram());
                else for (int b : q.lowBins()) FusionLoops.orderHistogram(PortableOps.COMMON, part, b, q.lowHistogram(b));
            }
            if (pass == 0) q.endHigh();
            else q.endLow();
        }
        float[] v = new float[ranks.length];
        for (int i = 0; i < ranks.length; i++) v[i] = q.value(i);
        return v;
    }

    @Test
    void everyRankMatchesASortWhateverTheChunks() {
        for (int n : new int[] {1, 2, 7, 1000, 4099}) {
            float[] x = values(n, n);
            long[][] rankSets = {
                    {ArceeFusion.quantileIndex(0.25, n), ArceeFusion.quantileIndex(0.5, n), ArceeFusion.quantileIndex(0.75, n)},
                    {0, n - 1, n / 2, n / 2},
                    {n / 3}};
            for (long[] ranks : rankSets) {
                float[] expect = sorted(x, ranks);
                for (int chunk : new int[] {1, 97, n}) {
                    float[] got = chunked(x, ranks, chunk);
                    for (int i = 0; i < ranks.length; i++) {
                        assertEquals(Float.floatToRawIntBits(expect[i]), Float.floatToRawIntBits(got[i]),
                                "n " + n + ", rank " + ranks[i] + ", chunks of " + chunk + ": " + got[i] + " vs sorted " + expect[i]);
                    }
                }
            }
        }
    }

    @Test
    void everyRankOfAWholeTileMatchesFloatSelect() {
        float[] x = values(11, 3001);
        Tile t = Tile.ofArray(x);
        for (long k : new long[] {0, 1, 750, 1500, 2250, 3000}) {
            assertEquals(Float.floatToRawIntBits(FloatSelect.kthSmallest(t, k)), Float.floatToRawIntBits(chunked(x, new long[] {k}, 128)[0]), "rank " + k);
        }
    }

    @Test
    void aRankOutsideTheVectorIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new FloatRanks(5, 5));
        assertThrows(IllegalArgumentException.class, () -> new FloatRanks(5, -1));
        assertThrows(IllegalStateException.class, () -> new FloatRanks(5, 1).value(0));
    }
}
