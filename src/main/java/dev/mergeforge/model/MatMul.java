package dev.mergeforge.model;

import dev.mergeforge.backend.ffm.NativeMatMul;
import dev.mergeforge.backend.Parallel;

/**
 * y = x·Wᵀ + b for row-major x [tokens, in] and W [out, in] (nn.Linear's layout), float32.
 * Output rows are split across threads in fixed chunks; each thread walks 4×4 tiles of
 * (token, output) pairs so every loaded x and W value is used four times. Each y element is
 * one dot product in a fixed order, so results do not depend on the thread count.
 */
final class MatMul {
    /** Output features per parallel task. */
    static final int OUT_CHUNK = 32;
    /** Tokens per cache tile: the x rows a thread reuses against its W rows. */
    static final int TOKEN_TILE = 64;
    /** Products of at least this many tokens go to the native kernel (copying W costs less than it saves). */
    static final int NATIVE_MIN_TOKENS = 16;
    /** Below this many multiply-adds a product runs on the calling thread. */
    static final long SERIAL_FLOPS = 1L << 18;

    private MatMul() {}

    static void linear(Parallel par, float[] x, int xOff, int tokens, int in, float[] w, int out, float[] b,
                       float[] y, int yOff) {
        linear(par, x, xOff, tokens, in, w, 0, out, b, y, yOff, out);
    }

    /**
     * y[t, yCol0 + o] = Σ_i x[t, i]·W[wRow0 + o, i] (+ b[o]) for o in [0, rows); y has {@code yStride}
     * columns. Lets callers multiply by a slab of W's rows (lm_head in chunks).
     */
    static void linear(Parallel par, float[] x, int xOff, int tokens, int in, float[] w, int wRow0, int rows, float[] b,
                       float[] y, int yOff, int yStride) {
        if (!ProductMeter.on()) {
            dispatch(par, x, xOff, tokens, in, w, wRow0, rows, b, y, yOff, yStride);
            return;
        }
        long t0 = System.nanoTime(), c0 = ProductMeter.cpuNow();
        dispatch(par, x, xOff, tokens, in, w, wRow0, rows, b, y, yOff, yStride);
        ProductMeter.add(ProductMeter.Kind.LINEAR, 2L * tokens * in * rows, System.nanoTime() - t0, ProductMeter.cpuNow() - c0);
    }

    private static void dispatch(Parallel par, float[] x, int xOff, int tokens, int in, float[] w, int wRow0, int rows, float[] b,
                                 float[] y, int yOff, int yStride) {
        // large products (calibration blocks) on the native GEMM when it is built
        if (tokens >= NATIVE_MIN_TOKENS && NativeMatMul.available()) {
            NativeMatMul.linear(x, xOff, tokens, in, w, wRow0, rows, b, y, yOff, yStride, par.threads());
            return;
        }
        linearJava(par, x, xOff, tokens, in, w, wRow0, rows, b, y, yOff, yStride);
    }

    /** The Java kernel of {@link #linear}, whatever the native library offers (tests compare the two). */
    static void linearJava(Parallel par, float[] x, int xOff, int tokens, int in, float[] w, int wRow0, int rows, float[] b,
                           float[] y, int yOff, int yStride) {
        Parallel.Body body = (lo, hi) -> {
            for (int t0 = 0; t0 < tokens; t0 += TOKEN_TILE) {
                int t1 = Math.min(tokens, t0 + TOKEN_TILE);
                tile(x, xOff, t0, t1, in, w, wRow0, (int) lo, (int) hi, b, y, yOff, yStride);
            }
        };
        // small products (decoding one token of a small model) cost less than a fork
        if ((long) tokens * in * rows < SERIAL_FLOPS) body.run(0, rows);
        else par.forRange(rows, OUT_CHUNK, body);
    }

    private static void tile(float[] x, int xOff, int t0, int t1, int in, float[] w, int wRow0, int o0, int o1, float[] b,
                             float[] y, int yOff, int ys) {
        int o = o0;
        for (; o + 4 <= o1; o += 4) {
            int w0 = (wRow0 + o) * in, w1 = w0 + in, w2 = w1 + in, w3 = w2 + in;
            int t = t0;
            for (; t + 4 <= t1; t += 4) {
                int x0 = xOff + t * in, x1 = x0 + in, x2 = x1 + in, x3 = x2 + in;
                float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
                float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
                for (int i = 0; i < in; i++) {
                    float v0 = x[x0 + i], v1 = x[x1 + i], v2 = x[x2 + i], v3 = x[x3 + i];
                    float u0 = w[w0 + i], u1 = w[w1 + i], u2 = w[w2 + i], u3 = w[w3 + i];
                    a00 += v0 * u0; a01 += v0 * u1; a02 += v0 * u2; a03 += v0 * u3;
                    a10 += v1 * u0; a11 += v1 * u1; a12 += v1 * u2; a13 += v1 * u3;
                    a20 += v2 * u0; a21 += v2 * u1; a22 += v2 * u2; a23 += v2 * u3;
                    a30 += v3 * u0; a31 += v3 * u1; a32 += v3 * u2; a33 += v3 * u3;
                }
                store(y, yOff, ys, t, o, b, a00, a01, a02, a03);
                store(y, yOff, ys, t + 1, o, b, a10, a11, a12, a13);
                store(y, yOff, ys, t + 2, o, b, a20, a21, a22, a23);
                store(y, yOff, ys, t + 3, o, b, a30, a31, a32, a33);
            }
            for (; t < t1; t++) {
                // one token against four rows: four independent sums, each in the same order as above
                int x0 = xOff + t * in;
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int i = 0; i < in; i++) {
                    float v = x[x0 + i];
                    a0 += v * w[w0 + i]; a1 += v * w[w1 + i]; a2 += v * w[w2 + i]; a3 += v * w[w3 + i];
                }
                store(y, yOff, ys, t, o, b, a0, a1, a2, a3);
            }
        }
        for (; o < o1; o++) {
            for (int t = t0; t < t1; t++) y[yOff + t * ys + o] = dot(x, xOff + t * in, w, (wRow0 + o) * in, in) + bias(b, o);
        }
    }

    private static void store(float[] y, int yOff, int ys, int t, int o, float[] b, float a0, float a1, float a2, float a3) {
        int at = yOff + t * ys + o;
        y[at] = a0 + bias(b, o);
        y[at + 1] = a1 + bias(b, o + 1);
        y[at + 2] = a2 + bias(b, o + 2);
        y[at + 3] = a3 + bias(b, o + 3);
    }

    private static float bias(float[] b, int o) { return b == null ? 0f : b[o]; }

    /** Σ_i a[ai+i]·b[bi+i], accumulated in the same sequential order as the tiled kernel. */
    static float dot(float[] a, int ai, float[] b, int bi, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += a[ai + i] * b[bi + i];
        return s;
    }
}
