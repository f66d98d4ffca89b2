package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Each kernel of kernels/calib.cu on the host emulator against a plain double-precision reference
 * written here (and, where the CPU pass sums in a fixed order, against its float32 bits).
 */
class CalibKernelsTest {
    private EmulatedDevice dev;
    private DeviceBufferPool pool;
    private ForwardOps fops;
    private final List<DeviceBuffer> held = new ArrayList<>();
    private final SplittableRandom rnd = new SplittableRandom(17);

    @BeforeEach
    void open() {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        dev = new EmulatedDevice();
        pool = new DeviceBufferPool(dev);
        fops = new ForwardOps(dev);
    }

    @AfterEach
    void close() {
        if (dev == null) return;
        held.forEach(pool::release);
        pool.close();
        dev.close();
    }

    private DeviceBuffer up(float[] a) {
        DeviceBuffer b = pool.borrow(4L * a.length, "test");
        held.add(b);
        dev.upload(MemorySegment.ofArray(a), b);
        return b;
    }

    private DeviceBuffer up(int[] a) {
        DeviceBuffer b = pool.borrow(4L * a.length, "test");
        held.add(b);
        dev.upload(MemorySegment.ofArray(a), b);
        return b;
    }

    private float[] down(DeviceBuffer b, int n) {
        float[] a = new float[n];
        dev.download(b, MemorySegment.ofArray(a));
        return a;
    }

    private float[] gaussian(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (rnd.nextGaussian() * scale);
        return a;
    }

    /** Positions of rows of sequences of these lengths laid out one after another. */
    private static int[] positions(int... lengths) {
        int n = 0;
        for (int l : lengths) n += l;
        int[] pos = new int[n];
        int r = 0;
        for (int l : lengths) for (int t = 0; t < l; t++) pos[r++] = t;
        return pos;
    }

    private static void close(double expect, float got, double rel, String what) {
        assertEquals(expect, got, 1e-6 + rel * Math.abs(expect), what);
    }

    @Test
    void rmsNormMatchesDoubleReference() {
        for (int width : new int[] {1, 7, 300}) {
            int rows = 5;
            float[] x = gaussian(rows * width, 3), g = gaussian(width, 1);
            double eps = 1e-5;
            DeviceBuffer out = pool.borrow(4L * x.length, "out");
            held.add(out);
            fops.rmsNorm(up(x), up(g), eps, width, out, rows);
            float[] got = down(out, x.length);
            for (int r = 0; r < rows; r++) {
                double ss = 0;
                for (int j = 0; j < width; j++) ss += (double) x[r * width + j] * x[r * width + j];
                double inv = 1 / Math.sqrt(ss / width + eps);
                for (int j = 0; j < width; j++) close(g[j] * x[r * width + j] * inv, got[r * width + j], 1e-6, "width " + width + " row " + r);
            }
        }
    }

    @Test
    void ropeMatchesDoubleReference() {
        int heads = 3, d = 8, half = d / 2;
        int[] pos = positions(5, 7);
        int rows = pos.length, maxPos = 7;
        double[] invFreq = new double[half];
        for (int i = 0; i < half; i++) invFreq[i] = Math.pow(10000, -2.0 * i / d);
        float[] cos = new float[maxPos * half], sin = new float[maxPos * half];
        for (int p = 0; p < maxPos; p++) {
            for (int i = 0; i < half; i++) {
                cos[p * half + i] = (float) Math.cos(p * invFreq[i]);
                sin[p * half + i] = (float) Math.sin(p * invFreq[i]);
            }
        }
        float[] x = gaussian(rows * heads * d, 1);
        DeviceBuffer dx = up(x);
        fops.rope(dx, up(cos), up(sin), up(pos), heads, d, rows);
        float[] got = down(dx, x.length);
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                int o = r * heads * d + h * d;
                for (int i = 0; i < half; i++) {
                    double a = pos[r] * invFreq[i], x1 = x[o + i], x2 = x[o + i + half];
                    close(x1 * Math.cos(a) - x2 * Math.sin(a), got[o + i], 1e-6, "row " + r + " head " + h + " pair " + i);
                    close(x2 * Math.cos(a) + x1 * Math.sin(a), got[o + i + half], 1e-6, "row " + r + " head " + h + " pair " + i);
                }
            }
        }
    }

    @Test
    void causalGroupedQueryAttentionMatchesDoubleReference() {
        int heads = 4, kvHeads = 2, d = 6;
        int[] pos = positions(5, 9, 1);
        int rows = pos.length, qd = heads * d, kvd = kvHeads * d;
        float[] q = gaussian(rows * qd, 1.5), k = gaussian(rows * kvd, 1.5), v = gaussian(rows * kvd, 1);
        float scale = (float) (1.0 / Math.sqrt(d));
        for (int window : new int[] {0, 3}) {
            DeviceBuffer out = pool.borrow(4L * rows * qd, "out");
            held.add(out);
            fops.attention(up(q), up(k), up(v), up(pos), heads, kvHeads, d, window, scale, out, rows);
            float[] got = down(out, rows * qd);
            for (int r = 0; r < rows; r++) {
                int first = r - pos[r], j0 = window > 0 ? Math.max(0, pos[r] - window + 1) : 0;
                for (int h = 0; h < heads; h++) {
                    int kvOff = (h / (heads / kvHeads)) * d;
                    double[] s = new double[pos[r] + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = j0; j <= pos[r]; j++) {
                        for (int i = 0; i < d; i++) s[j] += (double) q[r * qd + h * d + i] * k[(first + j) * kvd + kvOff + i];
                        s[j] *= scale;
                        max = Math.max(max, s[j]);
                    }
                    for (int j = j0; j <= pos[r]; j++) sum += Math.exp(s[j] - max);
                    for (int i = 0; i < d; i++) {
                        double o = 0;
                        for (int j = j0; j <= pos[r]; j++) o += Math.exp(s[j] - max) / sum * v[(first + j) * kvd + kvOff + i];
                        close(o, got[r * qd + h * d + i], 1e-5, "window " + window + " row " + r + " head " + h + " dim " + i);
                    }
                }
            }
        }
    }

    /**
     * The bits of DecoderLayer's RMSNorm (Norms.rms: squares summed left to right in double, then the
     * float mean, + eps and 1/sqrt in double), over more rows than one block's 64 and rows wider
     * than one 64-column staging tile, so the staged serial sums are checked at every seam.
     */
    @Test
    void rmsNormEqualsTheCpuBitsAcrossBlocksAndTiles() {
        for (int width : new int[] {1, 65, 130}) {
            int rows = 67;
            float[] x = gaussian(rows * width, 3), g = gaussian(width, 1);
            double eps = 1e-6;
            DeviceBuffer out = pool.borrow(4L * x.length, "out");
            held.add(out);
            fops.rmsNorm(up(x), up(g), eps, width, out, rows);
            float[] got = down(out, x.length);
            for (int r = 0; r < rows; r++) {
                int o = r * width;
                double ss = 0;
                for (int j = 0; j < width; j++) ss += (double) x[o + j] * x[o + j];
                float inv = (float) (1.0 / Math.sqrt((float) (ss / width) + eps));
                for (int j = 0; j < width; j++) {
                    float cpu = g[j] * (x[o + j] * inv);
                    assertEquals(Float.floatToRawIntBits(cpu), Float.floatToRawIntBits(got[o + j]),
                            "width " + width + " row " + r + " column " + j + ": cpu " + cpu + ", kernel " + got[o + j]);
                }
            }
        }
    }

    /**
     * The tiled attention gives the bits of DecoderLayer's float32 attention (Attention.attend,
     * restated here: scores by MatMul.dot's left-to-right float dot, max, e^(s - max) through
     * Math.exp summed in order, p_j = e_j * (1/sum), out += p_j * v_j in order). Sequences of 5, 20,
     * 1 and 37 tokens make the 16-row query tiles straddle sequences and span several key tiles;
     * head_dim 40 is not a multiple of the warp. (mf_expf equals (float) Math.exp except within
     * ~1e-16 of a rounding boundary, which random scores do not hit.)
     */
    @Test
    void tiledAttentionEqualsTheCpuBits() {
        int heads = 4, kvHeads = 2;
        int[] pos = positions(5, 20, 1, 37);
        int rows = pos.length;
        for (int d : new int[] {40, 3}) {
            int qd = heads * d, kvd = kvHeads * d;
            float[] q = gaussian(rows * qd, 1.5), k = gaussian(rows * kvd, 1.5), v = gaussian(rows * kvd, 1);
            float scale = (float) (1.0 / Math.sqrt(d));
            for (int window : new int[] {0, 7}) {
                DeviceBuffer out = pool.borrow(4L * rows * qd, "out");
                held.add(out);
                fops.attention(up(q), up(k), up(v), up(pos), heads, kvHeads, d, window, scale, out, rows);
                float[] got = down(out, rows * qd);
                float[] want = cpuAttention(q, k, v, pos, heads, kvHeads, d, window, scale);
                for (int i = 0; i < want.length; i++) {
                    assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), "head_dim " + d + " window " + window
                            + " row " + i / qd + " head " + i % qd / d + " dim " + i % d + ": cpu " + want[i] + ", kernel " + got[i]);
                }
            }
        }
    }

    /** DecoderLayer's attention in float32, in its order (see tiledAttentionEqualsTheCpuBits). */
    static float[] cpuAttention(float[] q, float[] k, float[] v, int[] pos, int heads, int kvHeads, int d, int window, float scale) {
        int rows = pos.length, qd = heads * d, kvd = kvHeads * d, group = heads / kvHeads;
        float[] out = new float[rows * qd];
        for (int r = 0; r < rows; r++) {
            int first = r - pos[r], j0 = window > 0 ? Math.max(0, pos[r] - window + 1) : 0;
            for (int h = 0; h < heads; h++) {
                int kvOff = (h / group) * d, qo = r * qd + h * d;
                float[] score = new float[pos[r] + 1];
                float max = Float.NEGATIVE_INFINITY;
                for (int j = j0; j <= pos[r]; j++) {
                    float s = 0;
                    for (int i = 0; i < d; i++) s += q[qo + i] * k[(first + j) * kvd + kvOff + i];
                    score[j] = s * scale;
                    if (score[j] > max) max = score[j];
                }
                float sum = 0;
                for (int j = j0; j <= pos[r]; j++) {
                    score[j] = (float) Math.exp(score[j] - max);
                    sum += score[j];
                }
                float inv = 1f / sum;
                for (int j = j0; j <= pos[r]; j++) {
                    float pj = score[j] * inv;
                    for (int i = 0; i < d; i++) out[qo + i] += pj * v[(first + j) * kvd + kvOff + i];
                }
            }
        }
        return out;
    }

    @Test
    void siluMulMatchesDoubleReferenceAndTheCpuBits() {
        int n = 20000;
        float[] gate = new float[n], upv = gaussian(n, 1);
        for (int i = 0; i < n; i++) gate[i] = (float) ((rnd.nextDouble() * 2 - 1) * (i % 2 == 0 ? 8 : 120));
        float[] special = {0f, -0f, 88.7f, 89.5f, -89.5f, -103.9f, -104.5f, 1e-30f, -1e-30f, Float.MIN_VALUE, Float.NaN, 1e4f, -1e4f};
        System.arraycopy(special, 0, gate, 0, special.length);
        DeviceBuffer dg = up(gate);
        fops.siluMul(dg, up(upv), n);
        float[] got = down(dg, n);
        for (int i = 0; i < n; i++) {
            float z = gate[i];
            // DecoderLayer's float32 formula: e^-z through Math.exp, rounded to float
            float cpu = z / (1f + (float) Math.exp(-z)) * upv[i];
            assertEquals(Float.floatToIntBits(cpu), Float.floatToIntBits(got[i]), "silu(" + z + ") * " + upv[i] + ": cpu " + cpu + ", kernel " + got[i]);
            if (!Float.isNaN(z)) close(z / (1 + Math.exp(-(double) z)) * upv[i], got[i], 1e-6, "silu(" + z + ")");
        }
    }

    @Test
    void biasAddIsTheFloatSum() {
        int cols = 7, rows = 9;
        float[] y = gaussian(rows * cols, 2), b = gaussian(cols, 1);
        DeviceBuffer dy = up(y);
        fops.biasAdd(dy, up(b), cols, (long) rows * cols);
        float[] got = down(dy, y.length);
        for (int i = 0; i < y.length; i++) assertEquals(y[i] + b[i % cols], got[i], 0f, "element " + i);
    }

    @Test
    void absSumColsAddsRowsInOrderInDouble() {
        int rows = 37, width = 300;
        float[] x = gaussian(rows * width, 5);
        double[] acc = new double[width];
        for (int j = 0; j < width; j++) acc[j] = j * 0.25;
        DeviceBuffer da = pool.borrow(8L * width, "acc");
        held.add(da);
        dev.upload(MemorySegment.ofArray(acc.clone()), da);
        fops.absSumCols(up(x), rows, width, da);
        double[] got = new double[width];
        dev.download(da, MemorySegment.ofArray(got));
        for (int j = 0; j < width; j++) {
            double s = acc[j];
            for (int r = 0; r < rows; r++) s += Math.abs(x[r * width + j]);
            assertEquals(s, got[j], 0.0, "column " + j);
        }
    }
}
