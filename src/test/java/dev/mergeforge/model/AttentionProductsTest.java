package dev.mergeforge.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeBackend;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The GEMM route of attention against a straightforward double-precision attention: grouped
 * heads (gemma2 fixture: 4 query heads on 2 kv heads of 16), earlier positions in the cache,
 * a block longer than one tile, with and without a sliding window and soft-capping.
 */
class AttentionProductsTest {
    @Test
    void matchesADoubleReferenceWithWindowsCapsAndCachedPositions() throws IOException {
        assumeTrue(AttentionProducts.use(MatMul.NATIVE_MIN_TOKENS), () -> "native GEMM unavailable: " + NativeBackend.unavailableReason());
        ModelConfig c = ModelConfig.fromJson(new ObjectMapper().readTree(ArchFixtures.dir("gemma2").resolve("config.json").toFile()),
                "gemma2/config.json");
        int d = c.headDim(), qd = c.qDim(), kvd = c.kvDim(), group = c.heads() / c.kvHeads();
        int pos0 = 3, tokens = AttentionProducts.TILE + 7, keys = pos0 + tokens;
        SplittableRandom r = new SplittableRandom(9);
        float[] q = new float[tokens * qd], kc = new float[keys * kvd], vc = new float[keys * kvd];
        for (float[] a : new float[][] {q, kc, vc}) for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        Parallel par = new Parallel(2);
        try {
            for (int window : new int[] {0, 5}) {
                for (float cap : new float[] {0f, 2f}) {
                    float scale = 0.25f;
                    float[] out = new float[tokens * qd];
                    AttentionProducts.attend(par, c, window, scale, cap, q, tokens, pos0, kc, vc, out);
                    for (int t = 0; t < tokens; t++) {
                        int pos = pos0 + t, first = window > 0 ? Math.max(0, pos - window + 1) : 0;
                        for (int h = 0; h < c.heads(); h++) {
                            int kv = (h / group) * d;
                            double[] p = new double[keys];
                            double max = Double.NEGATIVE_INFINITY, sum = 0;
                            for (int j = first; j <= pos; j++) {
                                double s = 0;
                                for (int i = 0; i < d; i++) s += (double) q[t * qd + h * d + i] * kc[j * kvd + kv + i];
                                s *= scale;
                                if (cap > 0) s = Math.tanh(s / cap) * cap;
                                p[j] = s;
                                max = Math.max(max, s);
                            }
                            for (int j = first; j <= pos; j++) sum += p[j] = Math.exp(p[j] - max);
                            for (int i = 0; i < d; i++) {
                                double o = 0;
                                for (int j = first; j <= pos; j++) o += p[j] / sum * vc[j * kvd + kv + i];
                                assertEquals(o, out[t * qd + h * d + i], 2e-5,
                                        "window " + window + " cap " + cap + " t " + t + " head " + h + " i " + i);
                            }
                        }
                    }
                }
            }
        } finally {
            par.shutdown();
        }
    }
}
