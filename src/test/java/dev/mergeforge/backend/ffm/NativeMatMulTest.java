package dev.mergeforge.backend.ffm;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class NativeMatMulTest {
    @Test
    void productsMatchADoubleReferenceOnOddShapesWithAndWithoutBias() {
        assumeTrue(NativeMatMul.available(), "native library not built: " + NativeBackend.unavailableReason());
        SplittableRandom r = new SplittableRandom(3);
        int[][] shapes = {{1, 1, 1}, {2, 7, 3}, {5, 8, 4}, {17, 33, 9}, {16, 130, 67}, {3, 257, 5}};
        for (int[] s : shapes) {
            int tokens = s[0], in = s[1], rows = s[2], wRow0 = 2, xOff = 3, yOff = 1, yStride = rows + 4;
            float[] x = new float[xOff + tokens * in], w = new float[(wRow0 + rows) * in], b = new float[rows];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
            for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
            for (float[] bias : new float[][] {null, b}) {
                float[] y = new float[yOff + tokens * yStride];
                java.util.Arrays.fill(y, 42f);
                NativeMatMul.linear(x, xOff, tokens, in, w, wRow0, rows, bias, y, yOff, yStride, 2);
                for (int t = 0; t < tokens; t++) {
                    for (int o = 0; o < rows; o++) {
                        double ref = bias == null ? 0 : bias[o], mag = Math.abs(ref);
                        for (int i = 0; i < in; i++) {
                            double p = (double) x[xOff + t * in + i] * w[(wRow0 + o) * in + i];
                            ref += p;
                            mag += Math.abs(p);
                        }
                        assertEquals(ref, y[yOff + t * yStride + o], 1e-6 * mag + 1e-7, "t " + t + " o " + o + " shape " + java.util.Arrays.toString(s));
                    }
                    for (int o = rows; o < yStride && yOff + t * yStride + o < y.length; o++) assertEquals(42f, y[yOff + t * yStride + o], "padding untouched");
                }
            }
        }
    }

    @Test
    void shortOperandsAreRefusedBeforeTheNativeCall() {
        assumeTrue(NativeMatMul.available(), "native library not built: " + NativeBackend.unavailableReason());
        float[] x = new float[10], w = new float[10], y = new float[3];
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.linear(x, 0, 2, 5, w, 0, 3, null, y, 0, 3, 1));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.linear(x, 1, 2, 5, w, 0, 1, null, new float[4], 0, 2, 1));
    }
}
