package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.backend.SphereSteps;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.chunk.RankSelection;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every CUDA chunk op against {@link JavaChunkOps}, bit for bit (NaN compared as NaN: a GPU may
 * return another payload), on device-resident native tiles: random data with NaN, ±Inf, -0.0,
 * subnormals and tied magnitudes, odd sizes that cut 4096-element blocks unevenly, chunks at tensor
 * offsets past 2^31 and 2^32 (reduction blocks, Philox counters), tie counts carried chunk to chunk.
 * Results are read back through {@link ChunkOps#onHost}, the one way method code sees them. Runs on
 * the kernel emulator; {@link CudaChunkOpsGpuTest} runs it on a GPU.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaChunkOpsTest {
    static final long[] SIZES = {1, 7, 4099, 2 * 4096 + 3};
    final JavaChunkOps ref = new JavaChunkOps(new Parallel(2));
    CudaBackend backend;
    ChunkOps cuda;
    Arena arena;

    Optional<String> unavailable() { return EmulatedDevice.unavailableReason(); }

    CudaBackend open() { return new CudaBackend(new EmulatedDevice()); }

    @BeforeAll
    void openBackend() {
        if (unavailable().isPresent()) return;
        backend = open();
        cuda = backend.chunkOps().orElseThrow();
        arena = Arena.ofShared();
    }

    @AfterAll
    void close() {
        if (backend != null) backend.close();
        if (arena != null) arena.close();
    }

    @BeforeEach
    void needDevice() { assumeTrue(unavailable().isEmpty(), () -> unavailable().orElse("")); }

    /** Values of every kind: weight-like, zeros of both signs, subnormals, a tied magnitude, large ones and (with {@code special}) NaN and ±Inf. */
    static float[] data(long n, long seed, boolean special) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[(int) n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (r.nextInt(special ? 24 : 20)) {
                case 0 -> 0f;
                case 1 -> -0f;
                case 2 -> Float.intBitsToFloat(r.nextInt(1, 0x007fffff)) * (r.nextBoolean() ? 1 : -1);
                case 3 -> r.nextBoolean() ? 0.015625f : -0.015625f;
                case 4 -> (float) (r.nextGaussian() * 1e4);
                case 20 -> Float.NaN;
                case 21 -> Float.POSITIVE_INFINITY;
                case 22 -> Float.NEGATIVE_INFINITY;
                case 23 -> Float.intBitsToFloat(0x7fc01234);   // a NaN with a payload
                default -> (float) (r.nextGaussian() * 0.02);
            };
        }
        return v;
    }

    /** A native tile (the kind a chunk runner borrows, which stays on the device) holding v. */
    Tile tile(float[] v) {
        Tile t = new Tile(arena.allocate(Math.max(4, 4L * v.length), 64), Shape.of(v.length));
        MemorySegment.copy(MemorySegment.ofArray(v), 0, t.data(), 0, 4L * v.length);
        return t;
    }

    /** The values of t as ops sees them. */
    static float[] read(ChunkOps ops, Tile t) {
        float[][] out = new float[1][];
        ops.onHost(List.of(t), List.of(), () -> out[0] = t.toArray());
        return out[0];
    }

    static void assertBits(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToIntBits(want[i]) != Float.floatToIntBits(got[i])) {
                fail(what + ": element " + i + " of " + want.length + " is " + got[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(got[i]))
                        + "), expected " + want[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(want[i])) + ")");
            }
        }
    }

    /** An op over fresh tiles of the inputs: {@code ins} are the inputs, the last tile is the output. */
    interface Op { void run(ChunkOps ops, List<Tile> t); }

    /** Runs op on both backends over copies of {@code inputs} plus an output tile, and compares every tile after. */
    void same(String what, Op op, float[]... inputs) {
        List<Tile> j = new ArrayList<>(), c = new ArrayList<>();
        for (float[] v : inputs) { j.add(Tile.ofArray(v.clone())); c.add(tile(v)); }
        // the same garbage in both outputs: an element the op should write and does not shows
        float[] garbage = data(inputs[0].length, 99, true);
        j.add(Tile.ofArray(garbage.clone()));
        c.add(tile(garbage));
        op.run(ref, j);
        op.run(cuda, c);
        for (int k = 0; k < j.size(); k++) assertBits(j.get(k).toArray(), read(cuda, c.get(k)), what + " n=" + inputs[0].length + " tile " + k);
        backend.released(c.getFirst());   // as a pool would: nothing of a dropped tile may be left on the device
    }

    @Test
    void elementwiseOps() {
        for (long n : SIZES) {
            float[] a = data(n, n, true), b = data(n, n + 1, true), w = data(n, n + 2, false);
            same("sub", (o, t) -> o.sub(t.get(0), t.get(1), t.get(2)), a, b);
            same("add in place", (o, t) -> o.add(t.get(0), t.get(1), t.get(0)), a, b);
            same("scale", (o, t) -> o.scale(t.get(0), -0.37f, t.get(1)), a);
            same("divide", (o, t) -> o.divide(t.get(0), 3f, t.get(1)), a);
            same("mul", (o, t) -> o.mul(t.get(0), t.get(1), t.get(2)), a, b);
            same("div", (o, t) -> o.div(t.get(0), t.get(1), t.get(2)), a, b);
            same("abs", (o, t) -> o.abs(t.get(0), t.get(1)), a);
            same("clamp", (o, t) -> o.clamp(t.get(0), -0.01f, 1e-6f, t.get(1)), a);
            same("fill", (o, t) -> o.fill(t.get(1), -0f), a);
            same("affine", (o, t) -> o.affine(t.get(0), 1.7f, -0.3f, t.get(1)), a);
            same("keepWhereNonZero", (o, t) -> o.keepWhereNonZero(t.get(0), t.get(1), t.get(2)), a, b);
            same("lerp", (o, t) -> o.lerp(t.get(0), t.get(1), 0.3f, t.get(2)), a, b);
            same("weightedSum", (o, t) -> o.weightedSum(t.subList(0, 3), new float[] {0.5f, -1.25f, 3f}, t.get(3)), a, b, w);
            same("electSign", (o, t) -> o.electSign(t.subList(0, 3), t.get(3)), w, b, a);
            same("deltaVariance", (o, t) -> o.deltaVariance(t.get(0), t.subList(1, 4), t.get(4)), a, b, w, a);
            same("deltaVariance without a base", (o, t) -> o.deltaVariance(null, t.subList(0, 2), t.get(2)), w, b);
            SphereSteps tangents = SphereSteps.tangents(new float[] {0.75f, -1.3f}, 0.37f, new float[] {3.1e-4f, 17f}, new float[] {0.2f, -0.9f},
                    new float[] {0.5f, 1.5f});
            for (SphereSteps s : List.of(SphereSteps.mean(new float[] {0.75f, -1.3f}), SphereSteps.units(new float[] {0.75f, -1.3f}, 0.37f,
                    new float[] {3.1e-4f, 17f}), tangents, tangents.result(0.83f, 0.61f, 7.5f))) {
                same("sphere " + s.level(), (o, t) -> o.sphere(t.get(0), t.subList(1, 3), s, t.get(4), t.get(3)), a, b, w, a);
                same("sphere " + s.level() + " without a base, tangent in the first input", (o, t) -> o.sphere(null, t.subList(0, 2), s, t.get(2), t.get(0)), b, w);
            }
            for (boolean norm : new boolean[] {false, true}) {
                same("disjointMerge " + norm, (o, t) -> o.disjointMerge(t.subList(0, 3), new float[] {1f, 0.5f, 2f}, t.get(3), norm, t.get(4)),
                        w, b, a, signs(n));
            }
            same("disjointDivisor", (o, t) -> o.disjointDivisor(t.subList(0, 3), new float[] {1f, 0.5f, 2f}, t.get(3), t.get(4)), w, b, a, signs(n));
            // SCE's combine: base, three task vectors, the sign tile, out
            same("disjointMean", (o, t) -> o.disjointMean(t.get(0), t.subList(1, 4), new float[] {0.25f, 0f, 0.75f}, 1e-6f, t.get(4), t.get(5)),
                    a, w, b, a, signs(n));
        }
    }

    /** SCE's variance from stored bytes of every float dtype, at an offset, with and without a base: the variance and the working tiles as the reference leaves them. */
    @Test
    void storedVarianceReadsEveryDtype() {
        List<DType> dtypes = List.of(DType.BF16, DType.F16, DType.F32, DType.F64);
        for (long n : SIZES) {
            long off = 5, len = n + off;
            List<TensorView> views = new ArrayList<>();
            for (int j = 0; j < 4; j++) {
                DType dt = dtypes.get(j);
                MemorySegment bytes = arena.allocate(len * dt.byteSize(), 8);
                ref.store(Tile.ofArray(data(len, n * 4 + j, j != 1)), dt, bytes);
                views.add(new TensorView("t" + j, dt, Shape.of(len), bytes, "test"));
            }
            for (boolean withBase : new boolean[] {true, false}) {
                TensorView base = withBase ? views.getFirst() : null;
                List<TensorView> xs = views.subList(1, 4);
                List<Tile> js = new ArrayList<>(), cs = new ArrayList<>();
                for (int j = 0; j < 4; j++) {
                    float[] garbage = data(n, 90 + j, true);
                    js.add(Tile.ofArray(garbage.clone()));
                    cs.add(tile(garbage));
                }
                ref.storedVariance(base, xs, off, js.subList(0, 3), js.get(3));
                cuda.storedVariance(base, xs, off, cs.subList(0, 3), cs.get(3));
                for (int k = 0; k < 4; k++) assertBits(js.get(k).toArray(), read(cuda, cs.get(k)), "storedVariance base=" + withBase + " n=" + n + " tile " + k);
                for (Tile c : cs) backend.released(c);
            }
        }
    }

    /** AIM's relaxation of a chunk two rows (along elements: 5 elements) into its tensor, against the channels it lies on. */
    @Test
    void relaxPlacesEachChunkOnItsChannels() {
        long cols = 7;
        for (long rows : new long[] {1, 3, 600}) {
            long n = rows * cols;
            float[] b = data(n, n + 5, true), m = data(n, n + 6, true);
            for (dev.mergeforge.backend.Backend.Axis axis : dev.mergeforge.backend.Backend.Axis.values()) {
                boolean elements = axis == dev.mergeforge.backend.Backend.Axis.ELEMENTS;
                long offset = elements ? 5 : 2 * cols;
                int channels = (int) switch (axis) { case COLUMNS -> cols; case ROWS -> rows + 2; case ELEMENTS -> n + 5; };
                SplittableRandom r = new SplittableRandom(channels);
                float[] imp = new float[channels];
                for (int c = 0; c < channels; c++) imp[c] = switch (r.nextInt(5)) { case 0 -> 0f; case 1 -> 1f; default -> (float) r.nextDouble(); };
                var relax = new dev.mergeforge.backend.Combination.Relax(imp, 0.4f, axis, elements ? n + 5 : cols);
                same("relax " + axis, (o, t) -> o.relax(t.get(0), t.get(1), relax, offset, t.get(2)), b, m);
                same("relax in place " + axis, (o, t) -> o.relax(t.get(0), t.get(1), relax, offset, t.get(1)), b, m);
            }
        }
    }

    static float[] signs(long n) {
        float[] s = new float[(int) n];
        SplittableRandom r = new SplittableRandom(n * 7);
        for (int i = 0; i < n; i++) s[i] = r.nextBoolean() ? 1f : -1f;
        return s;
    }

    @Test
    void loadsAndStoresEveryDtypeWithTheNonFiniteFlag() {
        long n = 2 * 4096 + 3;
        SplittableRandom r = new SplittableRandom(5);
        for (DType dt : List.of(DType.F32, DType.BF16, DType.F16, DType.F64)) {
            MemorySegment raw = arena.allocate(n * dt.byteSize(), 8);
            for (long i = 0; i < raw.byteSize(); i++) raw.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt());
            MemorySegment clean = arena.allocate(n * dt.byteSize(), 8);
            float[] finite = data(n, 6, false);
            ref.store(Tile.ofArray(finite), dt, clean);
            for (boolean random : new boolean[] {true, false}) {
                MemorySegment bytes = random ? raw : clean;
                TensorView v = new TensorView("t", dt, Shape.of(n), bytes, "test");
                // two chunks, the second short; each loaded twice (the second time from the device's kept copy)
                List<Tile> loaded = new ArrayList<>();
                int pass = 0;
                for (long[] cut : new long[][] {{0, 4097}, {4097, n - 4097}, {0, 4097}, {4097, n - 4097}}) {
                    Tile j = Tile.ofArray(new float[(int) cut[1]]), c = tile(new float[(int) cut[1]]);
                    loaded.add(c);
                    assertEquals(dt != DType.F64 && pass++ >= 2, cuda.holds(v, cut[0], cut[1]), dt + " chunk at " + cut[0] + " kept on the device after its first load");
                    boolean wantBad = ref.load(v, cut[0], j), gotBad = cuda.load(v, cut[0], c);
                    assertEquals(wantBad, gotBad, dt + " non-finite flag at " + cut[0]);
                    assertBits(j.toArray(), read(cuda, c), dt + " load at " + cut[0]);
                    // the later passes' unchecked reads: the same values
                    Tile again = tile(new float[(int) cut[1]]);
                    loaded.add(again);
                    cuda.reload(v, cut[0], again);
                    assertBits(j.toArray(), read(cuda, again), dt + " reload at " + cut[0]);
                    for (DType out : List.of(DType.F32, DType.BF16, DType.F16, DType.F64)) {
                        byte[] want = new byte[(int) (cut[1] * out.byteSize())], got = new byte[want.length];
                        ref.store(j, out, MemorySegment.ofArray(want));
                        cuda.store(c, out, MemorySegment.ofArray(got));
                        assertArrayEquals(want, got, dt + " stored as " + out);
                    }
                }
                // a chunk at a kept start but of another length is not the kept one
                assertFalse(cuda.holds(v, 0, 4000), dt + " another length at a kept start");
                Tile js = Tile.ofArray(new float[4000]), cs = tile(new float[4000]);
                loaded.add(cs);
                assertEquals(ref.load(v, 0, js), cuda.load(v, 0, cs), dt + " non-finite flag of the shorter chunk");
                assertBits(js.toArray(), read(cuda, cs), dt + " shorter chunk at a kept start");
                // the chunk tiles go back to their pool: the tensor is done, nothing of it stays kept
                for (Tile c : loaded) backend.released(c);
                assertFalse(cuda.holds(v, 0, 4097), "kept chunks dropped with their tensor's tiles");
                assertEquals(random, ref.load(v, 0, Tile.ofArray(new float[(int) n])), "random bytes hold NaN or Inf, the clean input none");
            }
        }
    }

    @Test
    void reductionsContinueBlocksAcrossChunksPast2To32() {
        // chunks of odd sizes starting off a block edge, at a tensor offset past 2^32
        long start = (3L << 31) + 1234;
        long[] cuts = {1, 4095, 5000, 8195};
        for (int kind = 0; kind < 3; kind++) {
            BlockSum want = BlockSum.at(start), got = BlockSum.at(start);
            long off = start;
            int s = 0;
            for (long n : cuts) {
                float[] a = data(n, ++s, false), b = data(n, ++s, false);
                Tile ja = Tile.ofArray(a), jb = Tile.ofArray(b), ca = tile(a), cb = tile(b);
                switch (kind) {
                    case 0 -> { ref.sumAbs(ja, off, want); cuda.sumAbs(ca, off, got); }
                    case 1 -> { ref.sumSquares(ja, off, want); cuda.sumSquares(ca, off, got); }
                    default -> { ref.dot(ja, jb, off, want); cuda.dot(ca, cb, off, got); }
                }
                off += n;
                assertEquals(want.next(), got.next());
                assertEquals(Double.doubleToRawLongBits(want.value()), Double.doubleToRawLongBits(got.value()), "reduction " + kind + " after " + off);
                double[] ws = want.stripes(), gs = got.stripes();
                for (int j = 0; j < ws.length; j++) {
                    assertEquals(Double.doubleToRawLongBits(ws[j]), Double.doubleToRawLongBits(gs[j]), "open block " + kind + ", stripe " + j);
                }
            }
        }
    }

    @Test
    void histogramsCountEveryBin() {
        for (long n : SIZES) {
            float[] a = data(n, n + 3, true);
            Tile ja = Tile.ofArray(a), ca = tile(a);
            long[] want = new long[1 << 15], got = new long[1 << 15];
            want[5] = got[5] = 11;   // the histogram adds to what it holds
            ref.absHistogram(ja, -1, want);
            cuda.absHistogram(ca, -1, got);
            assertArrayEquals(want, got, "high bits n=" + n);
            int high = Float.floatToRawIntBits(0.015625f) >>> 16;
            long[] wl = new long[1 << 16], gl = new long[1 << 16];
            ref.absHistogram(ja, high, wl);
            cuda.absHistogram(ca, high, gl);
            assertArrayEquals(wl, gl, "low bits n=" + n);
        }
    }

    @Test
    void keepRanksCarriesTieCountsAcrossChunks() {
        long n = 3 * 4096 + 11;
        float[] x = data(n, 17, false);
        long[][] windows = {{0, n / 3}, {n / 5, n / 2}, {1, n - 1}, {0, n}, {5, 5}};
        for (long[] w : windows) {
            RankSelection sel = new RankSelection(n, w[0], w[1]);
            if (sel.needsPasses()) {
                sel.high(ref, Tile.ofArray(x));
                sel.endHigh();
                sel.low(ref, Tile.ofArray(x));
                sel.endLow();
            }
            RankWindow win = sel.window();
            long[] seenJ = new long[2], seenC = new long[2];
            // chunks of 4097 and 5000 and the rest: carried counts cross the kernels' 4096-element pieces
            for (long[] cut : new long[][] {{0, 4097}, {4097, 5000}, {9097, n - 9097}}) {
                float[] part = Arrays.copyOfRange(x, (int) cut[0], (int) (cut[0] + cut[1]));
                Tile j = Tile.ofArray(part.clone()), c = tile(part);
                ref.keepRanks(j, win, seenJ);
                cuda.keepRanks(c, win, seenC);
                assertBits(j.toArray(), read(cuda, c), "ranks [" + w[0] + ", " + w[1] + ") chunk at " + cut[0]);
                assertArrayEquals(seenJ, seenC, "tie counts after chunk at " + cut[0]);
            }
        }
    }

    @Test
    void laneOps() {
        for (Lanes lanes : List.of(new Lanes(3, 5, 7), new Lanes(4, 4099, 1), new Lanes(1, 9, 13), Lanes.whole(4097))) {
            int n = (int) lanes.numel(), count = (int) lanes.count();
            float[] a = data(n, count, false), b = data(n, count + 1, false);
            double[] want = new double[count + 2], got = new double[count + 2];
            ref.laneDots(Tile.ofArray(a), Tile.ofArray(b), lanes, want);
            cuda.laneDots(tile(a), tile(b), lanes, got);
            for (int v = 0; v < want.length; v++) assertEquals(Double.doubleToRawLongBits(want[v]), Double.doubleToRawLongBits(got[v]), "lane dot " + v + " of " + lanes);
            float[] s = data(count, 3, false);
            same("laneScale " + lanes, (o, t) -> o.laneScale(t.get(0), s, lanes, t.get(1)), a);
            same("laneRanks " + lanes, (o, t) -> o.laneRanks(t.get(0), lanes, t.get(1)), a);
        }
    }

    @Test
    void keepBitsOfADropAppliedElsewhere() {
        // DELLA's round trip: a drop, its keep bits (from element 3 on), applied to another tile; the tiles compared after
        for (long n : new long[] {3, 4, 67, 4099}) {
            float[] x = data(n, n + 5, true), p = data(n, n + 6, false);
            for (int i = 0; i < n; i++) p[i] = Math.abs(p[i]) * 20;
            long from = 3, m = n - from;
            same("keep bits from 3", (o, t) -> {
                MemorySegment bits = arena.allocate(Math.max(8, (m + 63) / 64 * 8), 8);
                o.dropByProbability(t.get(0), t.get(1), 5, 0x1234L);
                o.nonZeroBits(t.get(0), from, m, bits);
                o.keepBits(t.get(2), from, m, bits);
            }, x, p);
        }
    }

    @Test
    void dropsDrawPhiloxByTensorIndexPast2To32() {
        // a chunk at an offset whose Philox counter needs its high word, not starting on a counter block
        for (long offset : new long[] {0, 3, (1L << 34) + 6}) {
            for (long n : new long[] {1, 4099}) {
                float[] x = data(n, n + offset, true);
                float[] p = data(n, 8, false);
                for (int i = 0; i < n; i++) p[i] = Math.abs(p[i]) * 20;   // probabilities below 0 and above 1 too
                p[0] = Float.NaN;
                if (n > 3) { p[1] = -0.5f; p[2] = Float.POSITIVE_INFINITY; p[3] = 1f; }
                long key = 0x9E3779B97F4A7C15L ^ offset;
                same("dropRandom at " + offset, (o, t) -> o.dropRandom(t.get(0), offset, 0.3f, key), x);
                same("dropRandom density 1 at " + offset, (o, t) -> o.dropRandom(t.get(0), offset, 1f, key), x);
                same("dropByProbability at " + offset, (o, t) -> o.dropByProbability(t.get(0), t.get(1), offset, key), x, p);
            }
        }
    }

    @Test
    void onHostSeesDeviceResultsAndTheOpsSeeHostWrites() {
        float[] a = data(4099, 1, false);
        Tile c = tile(a), out = tile(new float[a.length]);
        cuda.scale(c, 2f, out);   // the result lives on the device only
        Consumer<float[]> expectDoubled = got -> { for (int i = 0; i < a.length; i++) assertEquals(Float.floatToIntBits(2f * a[i]), Float.floatToIntBits(got[i]), "element " + i); };
        expectDoubled.accept(read(cuda, out));
        cuda.onHost(List.of(), List.of(out), () -> out.set(7, 123f));   // host code writes the tile
        cuda.scale(out, 1f, c);
        assertEquals(123f, read(cuda, c)[7], "the op after onHost reads what the host wrote");
        backend.released(c);
        backend.released(out);
    }
}
