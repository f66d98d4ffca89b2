package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Backend.Axis;
import dev.mergeforge.backend.Backend.Rescale;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.CanonicalSum;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The conformance suite every CUDA device runs: each op of the backend under test against the
 * Java backend, bit for bit, and against a plain double reference written here, on odd sizes that
 * cut canonical blocks and kernel chunks unevenly. Subclasses say which device and which sizes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class BackendConformanceSuite {
    static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    long[] testSizes;
    /** The backend under test (named for the usual case). */
    Backend cuda;
    JavaBackend java;

    /** Why the backend under test cannot run here, if it cannot. */
    abstract Optional<String> unavailable();

    /** Opens the backend under test (called once, only when available). */
    abstract Backend open();

    /** The tile sizes to test. */
    abstract long[] sizes();

    @BeforeAll
    void openBackends() {
        if (unavailable().isPresent()) return;
        testSizes = sizes();
        cuda = open();
        java = new JavaBackend(2);
    }

    @AfterAll
    void closeBackends() {
        if (cuda != null) cuda.close();
        if (java != null) java.close();
    }

    @BeforeEach
    void needDevice() {
        Optional<String> why = unavailable();
        Assumptions.assumeTrue(why.isEmpty(), () -> "backend under test unavailable: " + why.orElse(""));
    }

    /** Finite floats of weight-like size with zeros, -0.0, subnormals, large values and repeated magnitudes (ties). */
    static float[] data(long n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[(int) n];
        for (int i = 0; i < n; i++) {
            int kind = r.nextInt(20);
            v[i] = switch (kind) {
                case 0 -> 0f;
                case 1 -> -0f;
                case 2 -> Float.intBitsToFloat(r.nextInt(1, 0x007fffff)) * (r.nextBoolean() ? 1 : -1);
                case 3 -> (r.nextBoolean() ? 0.015625f : -0.015625f);   // a tied magnitude
                case 4 -> (float) (r.nextGaussian() * 1e4);
                default -> (float) (r.nextGaussian() * 0.02);
            };
        }
        return v;
    }

    static Tile tile(float[] v) { return Tile.ofArray(v.clone()); }

    /** Copies an in-place op's result into the compared tile, bits unchanged. */
    static void copy(Tile from, Tile to) { MemorySegment.copy(from.data(), 0, to.data(), 0, from.data().byteSize()); }

    static void assertBits(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                fail(what + ": element " + i + " of " + want.length + " is " + got[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(got[i]))
                        + "), expected " + want[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(want[i])) + ")");
            }
        }
    }

    /** Runs op on fresh copies for both backends and compares the tile it writes. */
    interface TileOp { void run(Backend b, Tile out); }

    float[] both(long n, String what, TileOp op) {
        Tile j = Tile.ofArray(new float[(int) n]), c = Tile.ofArray(new float[(int) n]);
        op.run(java, j);
        op.run(cuda, c);
        assertBits(j.toArray(), c.toArray(), what + " n=" + n);
        return c.toArray();
    }

    // ---------------------------------------------------------------- conversion

    @Test
    void loadEvery16BitPattern() {
        int n = (1 << 16) + 7;  // every pattern, then a few again so the size is odd
        MemorySegment raw = MemorySegment.ofArray(new short[n]);
        for (int i = 0; i < n; i++) raw.setAtIndex(S16, i, (short) i);
        for (DType dt : List.of(DType.BF16, DType.F16)) {
            TensorView v = new TensorView("t", dt, Shape.of(n), raw, "test");
            float[] got = both(n, "load " + dt, (b, out) -> b.load(v, out));
            for (int i = 0; i < n; i++) {
                int h = i & 0xffff, e = (h >> 10) & 0x1f, m = h & 0x3ff;
                double want = dt == DType.BF16 ? Float.intBitsToFloat(h << 16)
                        : (e == 0 ? m * 0x1p-24 : (1024 + m) * Math.scalb(1.0, e - 25)) * ((h & 0x8000) != 0 ? -1 : 1);
                if (dt == DType.F16 && e == 31) continue; // inf/NaN: covered bit for bit by the Java comparison
                if (!Float.isNaN(got[i])) assertEquals(want, got[i], 0.0, dt + " pattern 0x" + Integer.toHexString(h));
            }
        }
    }

    @Test
    void storeRoundsToNearestEven() {
        for (long n : testSizes) {
            float[] v = data(n, 1);
            if (n > 8) { v[0] = Float.NaN; v[1] = Float.POSITIVE_INFINITY; v[2] = 65520f; v[3] = 0x1p-25f; v[4] = 0x1.8p-25f; }
            for (DType dt : List.of(DType.BF16, DType.F16)) {
                short[] j = new short[(int) n], c = new short[(int) n];
                java.store(tile(v), dt, MemorySegment.ofArray(j));
                cuda.store(tile(v), dt, MemorySegment.ofArray(c));
                for (int i = 0; i < n; i++) {
                    assertEquals(j[i], c[i], "store " + dt + " of " + v[i] + " at " + i + " n=" + n);
                    float back = dt == DType.BF16 ? Floats.bf16ToFloat(c[i]) : Floats.f16ToFloat(c[i]);
                    if (Float.isFinite(back) && Float.isFinite(v[i])) {
                        // no neighbour of the stored value is nearer to the input
                        for (int d : new int[] {-1, 1}) {
                            short nb = (short) (c[i] + d);
                            float other = dt == DType.BF16 ? Floats.bf16ToFloat(nb) : Floats.f16ToFloat(nb);
                            if (Float.isFinite(other) && Math.signum(other) == Math.signum(back)) {
                                assertTrue(Math.abs((double) v[i] - back) <= Math.abs((double) v[i] - other), "nearest " + dt + " of " + v[i]);
                            }
                        }
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- elementwise

    @Test
    void elementwiseOps() {
        for (long n : testSizes) {
            float[] a = data(n, 2), b = data(n, 3), c = data(n, 4);
            float s = 0.37f, t = 0.3f, u = 1f - t;
            float[] r = both(n, "sub", (be, o) -> be.sub(tile(a), tile(b), o));
            for (int i = 0; i < n; i++) assertEquals((float) ((double) a[i] - b[i]), r[i], "sub ref");
            r = both(n, "add", (be, o) -> be.add(tile(a), tile(b), o));
            for (int i = 0; i < n; i++) assertEquals((float) ((double) a[i] + b[i]), r[i], "add ref");
            r = both(n, "scale", (be, o) -> be.scale(tile(a), s, o));
            for (int i = 0; i < n; i++) assertEquals((float) ((double) s * a[i]), r[i], "scale ref");
            r = both(n, "axpy", (be, o) -> {
                Tile y = tile(b);
                be.axpy(s, tile(a), y);
                copy(y, o);
            });
            for (int i = 0; i < n; i++) assertEquals((float) ((double) b[i] + (float) ((double) s * a[i])), r[i], "axpy ref");
            r = both(n, "lerp", (be, o) -> be.lerp(tile(a), tile(b), t, o));
            for (int i = 0; i < n; i++) assertEquals((float) ((double) (float) ((double) u * a[i]) + (float) ((double) t * b[i])), r[i], "lerp ref");
            float[] w = {0.5f, -0.25f, 0.125f};
            r = both(n, "weightedSum", (be, o) -> be.weightedSum(List.of(tile(a), tile(b), tile(c)), w, o));
            for (int i = 0; i < n; i++) {
                double acc = (float) ((double) w[0] * a[i]);
                acc = (float) (acc + (float) ((double) w[1] * b[i]));
                acc = (float) (acc + (float) ((double) w[2] * c[i]));
                assertEquals((float) acc, r[i], "weightedSum ref");
            }
            // out aliasing xs[0]
            Tile x0 = tile(a);
            cuda.weightedSum(List.of(x0, tile(b)), new float[] {1f, 1f}, x0);
            assertBits(both(n, "add", (be, o) -> be.add(tile(a), tile(b), o)), x0.toArray(), "weightedSum aliased");
        }
    }

    /** The ops that ran on the host until kernels/chunk.cu gave them kernels: against the Java backend, and plain references. */
    @Test
    void chunkKernelOpsOnWholeTiles() {
        for (long n : testSizes) {
            float[] a = data(n, 12), b = data(n, 13), c = data(n, 14);
            if (n > 2) { a[0] = Float.NaN; a[1] = Float.POSITIVE_INFINITY; b[2] = -0f; }
            float[] r = both(n, "mul", (be, o) -> be.mul(tile(a), tile(b), o));
            for (int i = 0; i < n; i++) assertEquals(a[i] * b[i], r[i], "mul ref");
            r = both(n, "div", (be, o) -> be.div(tile(a), tile(b), o));
            for (int i = 0; i < n; i++) assertEquals(a[i] / b[i], r[i], "div ref");
            both(n, "abs", (be, o) -> be.abs(tile(a), o));
            both(n, "clamp", (be, o) -> be.clamp(tile(a), -0.01f, 0.02f, o));
            r = both(n, "affine", (be, o) -> be.affine(tile(a), 1.5f, -0.25f, o));
            for (int i = 0; i < n; i++) assertEquals((float) ((double) (float) (1.5 * a[i]) - 0.25), r[i], "affine ref");
            both(n, "fill", (be, o) -> be.fill(o, -0f));
            both(n, "keepWhereNonZero", (be, o) -> be.keepWhereNonZero(tile(a), tile(b), o));
            float[] sign = new float[(int) n];
            for (int i = 0; i < n; i++) sign[i] = c[i] >= 0 ? 1f : -1f;
            both(n, "disjointDivisor", (be, o) -> be.disjointDivisor(List.of(tile(a), tile(b), tile(c)), new float[] {1f, 0.5f, 2f}, tile(sign), o));
            // lanes: rows of a [n/ k, k] view when n splits, else the whole tile as one lane
            long k = n % 7 == 0 ? 7 : n % 3 == 0 ? 3 : 1;
            dev.mergeforge.backend.Lanes lanes = new dev.mergeforge.backend.Lanes(n / k, k, 1);
            float[] f = data(lanes.count(), 15);
            both(n, "laneScale", (be, o) -> be.laneScale(tile(a), f, lanes, o));
            double[] dj = new double[(int) lanes.count()], dc = new double[(int) lanes.count()];
            java.laneDots(tile(b), tile(c), lanes, dj);
            cuda.laneDots(tile(b), tile(c), lanes, dc);
            for (int v = 0; v < dj.length; v++) assertEquals(Double.doubleToRawLongBits(dj[v]), Double.doubleToRawLongBits(dc[v]), "laneDots lane " + v);
        }
    }

    // ---------------------------------------------------------------- reductions

    @Test
    void reductionsInCanonicalOrder() {
        for (long n : testSizes) {
            float[] a = data(n, 5), b = data(n, 6);
            // the canonical order (docs/methods.md), written out independently
            double[] ref = {CanonicalSum.of(a, b, 0), CanonicalSum.of(a, b, 1), CanonicalSum.of(a, b, 2)};
            double[] got = {cuda.sumAbs(tile(a)), cuda.sumSquares(tile(a)), cuda.dot(tile(a), tile(b))};
            double[] jv = {java.sumAbs(tile(a)), java.sumSquares(tile(a)), java.dot(tile(a), tile(b))};
            for (int k = 0; k < 3; k++) {
                assertEquals(Double.doubleToRawLongBits(jv[k]), Double.doubleToRawLongBits(got[k]), "reduction " + k + " vs java, n=" + n);
                assertEquals(Double.doubleToRawLongBits(ref[k]), Double.doubleToRawLongBits(got[k]), "reduction " + k + " vs reference, n=" + n);
            }
        }
    }

    // ---------------------------------------------------------------- sparsification

    /** Reference: rank by |x| descending then index, keep ranks in [from, to). */
    float[] keepRankRef(float[] v, long from, long to) {
        Integer[] idx = IntStream.range(0, v.length).boxed().toArray(Integer[]::new);
        Arrays.sort(idx, Comparator.<Integer>comparingDouble(i -> -Math.abs(v[i])).thenComparingInt(i -> i));
        float[] out = new float[v.length];
        for (int r = 0; r < v.length; r++) if (r >= from && r < to) out[idx[r]] = v[idx[r]];
        return out;
    }

    @Test
    void keepRankRangeWithTies() {
        for (long n : testSizes) {
            float[] v = data(n, 7);
            List<long[]> ranges = new ArrayList<>(List.of(new long[] {0, n / 5}, new long[] {n / 7, n / 2}, new long[] {0, 1},
                    new long[] {n - 1, n}, new long[] {0, n}, new long[] {3, 3}, new long[] {-4, n + 9}, new long[] {n / 3, n + 1}));
            for (long[] fr : ranges) {
                float[] r = both(n, "keepRankRange[" + fr[0] + "," + fr[1] + ")", (be, o) -> {
                    Tile x = tile(v);
                    be.keepRankRange(x, fr[0], fr[1]);
                    copy(x, o);
                });
                float[] want = keepRankRef(v, fr[0], fr[1]);
                for (int i = 0; i < n; i++) assertEquals(want[i], r[i], "keepRankRange ref at " + i);
            }
        }
        // all magnitudes equal: the rank is the index alone
        float[] same = new float[10_001];
        for (int i = 0; i < same.length; i++) same[i] = i % 2 == 0 ? 0.5f : -0.5f;
        Tile c = tile(same), j = tile(same);
        cuda.keepRankRange(c, 4000, 7000);
        java.keepRankRange(j, 4000, 7000);
        assertBits(j.toArray(), c.toArray(), "keepRankRange all ties");
    }

    @Test
    void dropRescaleAllModes() {
        for (long n : testSizes) {
            float[] v = data(n, 8);
            for (Rescale mode : Rescale.values()) {
                for (float density : new float[] {0.1f, 0.5f, 0.9f, 1f}) {
                    long key = Philox.key(42, "model.layers.0.mlp.up_proj.weight", 1);
                    float[] r = both(n, "dropRescale " + mode + " " + density, (be, o) -> {
                        Tile x = tile(v);
                        be.dropRescale(x, density, key, mode);
                        copy(x, o);
                    });
                    long thr = (long) Math.min(16777216.0, Math.ceil(density * 16777216.0));
                    for (int i = 0; i < n; i++) {
                        boolean kept = Philox.uniform24(key, i) < thr;
                        if (!kept) assertEquals(0f, r[i], "dropped " + i);
                        if (kept && mode == Rescale.NONE) assertEquals(v[i], r[i], "kept " + i);
                        if (kept && mode == Rescale.DENSITY) assertEquals((float) ((double) v[i] / density), r[i], "rescaled " + i);
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- TIES, AIM

    @Test
    void electSignAndDisjointMerge() {
        for (long n : testSizes) {
            List<float[]> xs = List.of(data(n, 9), data(n, 10), data(n, 11));
            float[] w = {0.4f, 0.35f, 0.25f};
            float[] sign = both(n, "electSign", (be, o) -> be.electSign(xs.stream().map(BackendConformanceSuite::tile).toList(), o));
            for (int i = 0; i < n; i++) {
                float s = (float) ((float) ((double) xs.get(0)[i] + xs.get(1)[i]) + (double) xs.get(2)[i]);
                assertEquals(s >= 0 ? 1f : -1f, sign[i], "sign ref");
            }
            for (boolean normalize : new boolean[] {false, true}) {
                float[] r = both(n, "disjointMerge " + normalize, (be, o) -> be.disjointMerge(xs.stream().map(BackendConformanceSuite::tile).toList(), w, tile(sign), normalize, o));
                for (int i = 0; i < n; i++) {
                    float acc = 0f, div = 0f;
                    for (int j = 0; j < 3; j++) {
                        float x = xs.get(j)[i];
                        if (Math.signum(x) == sign[i] && x != 0) { acc = (float) ((double) acc + x); div = (float) ((double) div + w[j]); }
                    }
                    if (normalize) acc = (float) ((double) acc / (div == 0 ? 1 : div));
                    assertEquals(acc, r[i], "disjointMerge ref at " + i);
                }
            }
        }
    }

    @Test
    void relaxAlongEachAxis() {
        long rows = 37, cols = 101, n = rows * cols;
        float[] base = data(n, 12), merged = data(n, 13);
        float omega = 0.35f, keep = 1f - omega;
        for (Axis axis : Axis.values()) {
            long ch = switch (axis) { case COLUMNS -> cols; case ROWS -> rows; case ELEMENTS -> n; };
            float[] imp = new float[(int) ch];
            SplittableRandom r = new SplittableRandom(14);
            for (int c = 0; c < ch; c++) imp[c] = (float) r.nextDouble();
            Shape shape = Shape.of(rows, cols);
            float[] got = both(n, "relax " + axis, (be, o) -> be.relax(Tile.ofArray(shape, base.clone()), Tile.ofArray(shape, merged.clone()),
                    Tile.ofArray(imp.clone()), omega, axis, o.reshape(shape)));
            for (int i = 0; i < n; i++) {
                int c = (int) switch (axis) { case COLUMNS -> i % cols; case ROWS -> i / cols; case ELEMENTS -> i; };
                float f = (float) (1.0 - (float) ((double) keep * imp[c]));
                float d = (float) ((double) merged[i] - base[i]);
                assertEquals((float) ((double) base[i] + (float) ((double) d * f)), got[i], "relax ref " + axis + " at " + i);
            }
        }
    }

}
