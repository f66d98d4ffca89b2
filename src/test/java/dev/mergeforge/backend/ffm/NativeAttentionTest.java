package dev.mergeforge.backend.ffm;

import dev.mergeforge.bindings.MergeOps;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * mo_attention against the computation docs/calibration.md promises, written out here in Java:
 * each score one Math.fma chain in ascending order, the softmax with the documented exp polynomial
 * (itself checked against Math.exp) and eight-lane sum, each output one Math.fma chain over the
 * probabilities (masked keys as zeros) — bit for bit, on every SIMD variant and for 1, 2 and 3
 * threads, with grouped heads, cached positions, several tiles (the last one short) and a sliding
 * window.
 */
class NativeAttentionTest {
    @AfterEach
    void restoreSimd() { NativeFixtures.restoreSimd(); }

    /** The documented exp: 2^n·(1 + r + r²·p(r)), n = rint(x·log2 e), r = x − n·ln 2 in two parts; 0 below −87. */
    static float exp(float x) {
        float n = Math.max((float) Math.rint(x * 1.44269504088896341f), -126f);
        float r = Math.fma(n, -0.693359375f, x);
        r = Math.fma(n, 2.12194440e-4f, r);
        float p = 1.9875691500e-4f;
        for (float c : new float[] {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f}) {
            p = Math.fma(p, r, c);
        }
        float y = Math.fma(p, r * r, r) + 1f;
        return x < -87f ? 0f : y * Float.intBitsToFloat(((int) n + 127) << 23);
    }

    /** The promised result for query t, head h (cap 0). */
    static float[] reference(float[] q, float[] k, float[] v, int tokens, int pos0, int heads, int kvHeads, int d, int window, float scale,
                             int t, int h) {
        int qd = heads * d, kvd = kvHeads * d, kv = h / (heads / kvHeads) * d, pos = pos0 + t;
        int first = window > 0 ? Math.max(0, pos - window + 1) : 0;
        float[] s = new float[pos + 1];
        float max = Float.NEGATIVE_INFINITY;
        for (int j = first; j <= pos; j++) {
            float c = 0f;
            for (int i = 0; i < d; i++) c = Math.fma(q[t * qd + h * d + i], k[j * kvd + kv + i], c);
            s[j] = c * scale;
            max = Math.max(max, s[j]);
        }
        float[] lane = new float[8];
        for (int j = first; j <= pos; j++) {
            s[j] = exp(s[j] - max);
            lane[(j - first) & 7] += s[j];
        }
        float inv = 1f / (((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
        // the tile's value chain runs over every key the tile sees; keys after pos are exact zeros
        int seen = Math.min(pos0 + tokens, pos0 + (t / NativeMatMul.ATTENTION_TILE + 1) * NativeMatMul.ATTENTION_TILE);
        float[] out = new float[d];
        for (int i = 0; i < d; i++) {
            float o = 0f;
            for (int j = 0; j < seen; j++) o = Math.fma(j >= first && j <= pos ? s[j] * inv : 0f, v[j * kvd + kv + i], o);
            out[i] = o;
        }
        return out;
    }

    private static float[] gaussian(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (2 * r.nextGaussian());
        return a;
    }

    /** The variants this CPU has, best first. */
    static Set<String> levels() {
        Set<String> out = new LinkedHashSet<>();
        for (String l : new String[] {"avx512", "avx2", "portable"}) out.add(NativeBackend.forceSimd(l));
        return out;
    }

    @Test
    void everyOutputIsTheDocumentedComputationBitForBitOnEveryPathAndThreadCount() {
        NativeFixtures.requireNative();
        assertEquals(MergeOps.MO_ATTENTION_TILE(), NativeMatMul.ATTENTION_TILE);
        int heads = 4, kvHeads = 2, d = 40, pos0 = 5, tokens = 2 * NativeMatMul.ATTENTION_TILE + 9, keys = pos0 + tokens;
        SplittableRandom r = new SplittableRandom(11);
        float[] q = gaussian(r, tokens * heads * d), k = gaussian(r, keys * kvHeads * d), v = gaussian(r, keys * kvHeads * d);
        for (int window : new int[] {0, 19}) {
            float[] first = null;
            for (String level : levels()) {
                NativeBackend.forceSimd(level);
                for (int threads = 1; threads <= 3; threads++) {
                    float[] out = new float[tokens * heads * d];
                    NativeMatMul.attention(q, tokens, pos0, k, v, heads, kvHeads, d, window, 0.125f, 0f, out, threads);
                    String where = "window " + window + " " + level + " threads " + threads;
                    if (first == null) {
                        first = out;
                        for (int t = 0; t < tokens; t++) {
                            for (int h = 0; h < heads; h++) {
                                float[] want = reference(q, k, v, tokens, pos0, heads, kvHeads, d, window, 0.125f, t, h);
                                for (int i = 0; i < d; i++) {
                                    float got = out[t * heads * d + h * d + i];
                                    assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got),
                                            where + " t " + t + " h " + h + " i " + i + ": " + want[i] + " vs " + got);
                                }
                            }
                        }
                    } else {
                        assertTrue(Arrays.equals(first, out), where + ": bits differ from the first run");
                    }
                }
            }
        }
    }

    @Test
    void theExpPolynomialIsWithinTwoUlpsOfMathExp() {
        for (int i = 0; i <= 870_000; i++) {
            float x = -i * 1e-4f;
            double want = Math.exp(x);
            float got = exp(x);
            if (want < Float.MIN_NORMAL * 2) continue;
            assertEquals(want, got, 2 * Math.ulp((float) want), "exp(" + x + ")");
        }
        assertEquals(0f, exp(-87.5f));
        assertEquals(1f, exp(0f));
    }

    @Test
    void operandsThatDoNotFitAreRefusedBeforeTheNativeCall() {
        NativeFixtures.requireNative();
        float[] q = new float[2 * 8], k = new float[3 * 8], v = new float[3 * 8], out = new float[2 * 8];
        // 2 tokens after 1 cached position, 2 heads of 4 on 2 kv heads: fits
        NativeMatMul.attention(q, 2, 1, k, v, 2, 2, 4, 0, 1f, 0f, out, 1);
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.attention(q, 2, 2, k, v, 2, 2, 4, 0, 1f, 0f, out, 1));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.attention(q, 3, 0, k, v, 2, 2, 4, 0, 1f, 0f, out, 1));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.attention(q, 2, 1, k, v, 3, 2, 4, 0, 1f, 0f, new float[48], 1));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.attention(q, 2, 1, k, v, 2, 2, 4, -1, 1f, 0f, out, 1));
    }
}
