package dev.mergeforge.backend.ffm;

import dev.mergeforge.tensor.Floats;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * mo_sgemm_nt against two independent references written here: a double-precision sum (within
 * the error bound of a float32 chain) and the exactness it promises, one Math.fma chain per output
 * in ascending order (bit for bit), on shapes that cut the kernel's blocking (MR 6 tokens, NR 16
 * and NC 64 outputs, KC 256 inner) off its multiples, with row strides, for 1, 2 and 3 threads and
 * on both the AVX2 and the portable path.
 */
class NativeMatMulTest {
    /** {tokens, in, rows}: single elements, partial register tiles, inner blocks of 256 ± 1, output tasks of 64 ± 1. */
    private static final int[][] SHAPES = {
        {1, 1, 1}, {2, 7, 3}, {5, 8, 4}, {6, 16, 16}, {7, 17, 17}, {17, 33, 9}, {16, 130, 67}, {3, 257, 5},
        {13, 255, 63}, {12, 256, 64}, {97, 513, 65}, {25, 0, 18}, {100, 300, 130}, {9, 129, 33}, {8, 128, 32},
    };

    @AfterEach
    void restoreSimd() { NativeFixtures.restoreSimd(); }

    private static float[] gaussian(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    /** One case's operands, with strides wider than the rows and garbage around what the product reads. */
    private record Operands(int tokens, int in, int rows, int ldx, int ldw, int ldy, int xOff, int wOff, int yOff, float[] x, float[] w,
                            float[] b) {
        static Operands random(int[] s, SplittableRandom r) {
            int tokens = s[0], in = s[1], rows = s[2], ldx = in + 3, ldw = in + 1, ldy = rows + 5;
            return new Operands(tokens, in, rows, ldx, ldw, ldy, 2, 7, 1, gaussian(r, 2 + tokens * ldx), gaussian(r, 7 + rows * ldw),
                    gaussian(r, rows));
        }

        float[] run(float[] bias, int threads) {
            float[] y = new float[yOff + tokens * ldy];
            Arrays.fill(y, 42f);
            NativeMatMul.linear(x, xOff, ldx, tokens, in, w, wOff, ldw, rows, bias, y, yOff, ldy, threads);
            return y;
        }

        /** The promised result: s = 0, s = fma(x[t,i], w[o,i], s) for i ascending, then s + b[o]. */
        float fmaChain(int t, int o, float[] bias) {
            float s = 0f;
            for (int i = 0; i < in; i++) s = Math.fma(x[xOff + t * ldx + i], w[wOff + o * ldw + i], s);
            return bias == null ? s : s + bias[o];
        }
    }

    @Test
    void eachOutputIsOneFusedChainBitForBitOnEveryPathAndThreadCount() {
        NativeFixtures.requireNative();
        SplittableRandom r = new SplittableRandom(3);
        for (int[] s : SHAPES) {
            Operands op = Operands.random(s, r);
            for (float[] bias : new float[][] {null, op.b()}) {
                float[] first = null;
                for (String level : NativeAttentionTest.levels()) {
                    NativeBackend.forceSimd(level);
                    for (int threads = 1; threads <= 3; threads++) {
                        float[] y = op.run(bias, threads);
                        String where = Arrays.toString(s) + (bias == null ? " no bias" : " bias") + " " + NativeBackend.simd() + " threads " + threads;
                        if (first == null) {
                            first = y;
                            for (int t = 0; t < op.tokens(); t++) {
                                for (int o = 0; o < op.ldy(); o++) {
                                    float got = y[op.yOff() + t * op.ldy() + o];
                                    float want = o < op.rows() ? op.fmaChain(t, o, bias) : 42f;
                                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got),
                                            where + " t " + t + " o " + o + ": " + want + " vs " + got);
                                }
                            }
                            assertEquals(42f, y[0], "before yOff untouched");
                        } else {
                            assertTrue(Arrays.equals(first, y), where + ": bits differ from the first run");
                        }
                    }
                }
            }
        }
    }

    @Test
    void productsMatchADoubleReferenceWithinTheChainsErrorBound() {
        NativeFixtures.requireNative();
        SplittableRandom r = new SplittableRandom(5);
        for (int[] s : SHAPES) {
            Operands op = Operands.random(s, r);
            float[] y = op.run(op.b(), 2);
            for (int t = 0; t < op.tokens(); t++) {
                for (int o = 0; o < op.rows(); o++) {
                    double ref = op.b()[o], mag = Math.abs(ref);
                    for (int i = 0; i < op.in(); i++) {
                        double p = (double) op.x()[op.xOff() + t * op.ldx() + i] * op.w()[op.wOff() + o * op.ldw() + i];
                        ref += p;
                        mag += Math.abs(p);
                    }
                    // in roundings of the chain plus the bias add, each at most 2^-24 of the running magnitude
                    double bound = (op.in() + 1) * 0x1p-24 * mag + Float.MIN_NORMAL;
                    assertEquals(ref, y[op.yOff() + t * op.ldy() + o], bound, Arrays.toString(s) + " t " + t + " o " + o);
                }
            }
        }
    }

    @Test
    void shortOperandsAreRefusedBeforeTheNativeCall() {
        NativeFixtures.requireNative();
        float[] x = new float[10], w = new float[10], y = new float[3];
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.linear(x, 0, 2, 5, w, 0, 3, null, y, 0, 3, 1));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.linear(x, 1, 2, 5, w, 0, 1, null, new float[4], 0, 2, 1));
        // strides: the second row of x at 6 + 5 would pass the end; a stride shorter than a row
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.linear(x, 0, 6, 2, 5, w, 0, 5, 1, null, y, 0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.linear(x, 0, 4, 2, 5, w, 0, 5, 1, null, y, 0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.linear(x, 0, 5, 2, 5, w, 0, 5, 2, new float[1], new float[4], 0, 2, 1));
    }

    @Test
    void layerConversionGivesTheJavaConversionsBitsForEveryHalfPattern() {
        NativeFixtures.requireNative();
        int n = 1 << 16;
        // every 16-bit pattern (NaNs with payloads, infinities, subnormals, ±0), offset by 3 in the output
        MemorySegment src = Arena.ofAuto().allocate(2L * n, 2);
        for (int i = 0; i < n; i++) src.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) i);
        for (boolean half : new boolean[] {false, true}) {
            float[] out = new float[n + 4];
            NativeMatMul.toFloats(src, half, out, 3, n);
            for (int i = 0; i < n; i++) {
                float want = half ? Float.float16ToFloat((short) i) : Floats.bf16ToFloat((short) i);
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(out[3 + i]), (half ? "f16 " : "bf16 ") + Integer.toHexString(i));
            }
            assertEquals(0f, out[2]);
            assertEquals(0f, out[n + 3]);
        }
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.toFloats(src, false, new float[n], 1, n));
        assertThrows(IllegalArgumentException.class, () -> NativeMatMul.toFloats(src.asSlice(0, 6), false, new float[4], 0, 4));
    }

    @Test
    void theFmaLoopReportsTwelveChainsOfItsVectorWidthPerRoundAndWorker() {
        NativeFixtures.requireNative();
        for (String level : NativeAttentionTest.levels()) {
            NativeBackend.forceSimd(level);
            int lanes = level.equals("avx512") ? 16 : 8;
            assertEquals(1000L * 12 * lanes * 2 * 3, NativeMatMul.fmaPeak(1000, 3), level);
            assertEquals(0L, NativeMatMul.fmaPeak(0, 2), level);
        }
    }
}
