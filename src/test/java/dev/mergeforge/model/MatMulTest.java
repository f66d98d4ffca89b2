package dev.mergeforge.model;

import dev.mergeforge.backend.Parallel;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The Java kernel and whatever {@code linear} dispatches to (native when built), against a double reference. */
class MatMulTest {
    @Test
    void javaAndDispatchedKernelsMatchTheDoubleReference() {
        Parallel par = new Parallel(2);
        try {
            SplittableRandom r = new SplittableRandom(11);
            for (int[] s : new int[][] {{1, 9, 5}, {16, 33, 7}, {40, 128, 96}, {19, 70, 3}}) {
                int tokens = s[0], in = s[1], out = s[2];
                float[] x = new float[tokens * in], w = new float[out * in], b = new float[out];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
                for (int i = 0; i < out; i++) b[i] = (float) r.nextGaussian();
                float[] yj = new float[tokens * out], yd = new float[tokens * out];
                MatMul.linearJava(par, x, 0, tokens, in, w, 0, out, b, yj, 0, out);
                MatMul.linear(par, x, 0, tokens, in, w, out, b, yd, 0);
                for (int t = 0; t < tokens; t++) {
                    for (int o = 0; o < out; o++) {
                        double ref = b[o], mag = Math.abs(b[o]);
                        for (int i = 0; i < in; i++) {
                            double p = (double) x[t * in + i] * w[o * in + i];
                            ref += p;
                            mag += Math.abs(p);
                        }
                        assertEquals(ref, yj[t * out + o], 1e-6 * mag + 1e-7, "java kernel");
                        assertEquals(ref, yd[t * out + o], 1e-6 * mag + 1e-7, "dispatched kernel");
                    }
                }
            }
        } finally {
            par.shutdown();
        }
    }
}
