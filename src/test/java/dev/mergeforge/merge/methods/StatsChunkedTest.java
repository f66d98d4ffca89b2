package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkRunner;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.HostArrays;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Fisher and RegMean as passes over chunks against their whole-tensor path (the oracle: float32
 * tiles of whole tensors on the Java backend, stored in the output dtype), byte for byte, on the
 * Java and native chunk ops, with chunks far smaller than the tensor and off every natural boundary
 * (Fisher: any cut; RegMean: a chunk asked for smaller than a row, a few rows, a partial last chunk).
 * RegMean's Linear solves run on the CPU's solver on both paths (OpenBLAS where present, as here).
 */
class StatsChunkedTest {
    private static final ValueLayout.OfFloat F32LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static JavaBackend jb;
    private static NativeBackend nat;

    @BeforeAll
    static void open() {
        jb = new JavaBackend(2);
        if (NativeBackend.isAvailable()) nat = new NativeBackend(2);
    }

    @AfterAll
    static void close() {
        jb.close();
        if (nat != null) nat.close();
    }

    private static List<Backend> backends() { return nat == null ? List.of(jb) : List.of(jb, nat); }

    static TensorView view(String name, float[] x, DType dt, Shape shape, Arena arena) {
        MemorySegment s = arena.allocate((long) x.length * dt.byteSize(), 8);
        for (int i = 0; i < x.length; i++) {
            switch (dt) {
                case F32 -> s.setAtIndex(F32LE, i, x[i]);
                case BF16 -> s.setAtIndex(S16, i, Floats.floatToBf16(x[i]));
                default -> throw new IllegalArgumentException(dt.toString());
            }
        }
        return new TensorView(name, dt, shape, s, "test file " + name);
    }

    private static Params params(MethodSpec spec, Map<String, Object> given) {
        Map<String, Object> v = new LinkedHashMap<>(Harness.params(spec.perModel(), Map.of("weight", given.get("weight")), "models").values());
        v.putAll(given);
        return new Params(v, "models");
    }

    /** The oracle: whole-tensor tiles on the Java backend, the method's merge, stored in {@code out}. */
    static byte[] whole(MergeMethod m, Shape shape, List<TensorView> models, List<TensorView> stats, List<Params> ps, DType out, List<String> notes) {
        try (TilePool pool = new TilePool()) {
            List<Tile> ms = new ArrayList<>(), ss = new ArrayList<>();
            for (TensorView v : models) {
                Tile t = pool.borrow(shape);
                jb.load(v, t);
                ms.add(t);
            }
            for (TensorView v : stats) {
                Tile t = pool.borrow(v.shape());
                jb.load(v, t);
                ss.add(t);
            }
            Tile o = pool.borrow(shape);
            m.merge(new MergeContext(jb, pool, 1, notes::add), new MergeInputs("t", null, ms, ps, -1, 0, ss), o);
            MemorySegment bytes = MemorySegment.ofArray(new byte[(int) (shape.numel() * out.byteSize())]);
            jb.store(o, out, bytes);
            pool.release(o);
            pool.releaseAll(ms);
            pool.releaseAll(ss);
            return bytes.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** The chunked program on one backend's chunk ops, chunk by chunk into the output bytes; returns the bytes and the chunk count. */
    static byte[] chunked(ChunkOps ops, ChunkedMethod m, Shape shape, List<TensorView> models, List<TensorView> stats, List<Params> ps,
                          DType out, long chunk, List<String> notes, long[] chunks) {
        return chunked(ops, m, shape, models, stats, ps, out, chunk, notes, chunks, new HostArrays());
    }

    /** As above, the program's float64 arrays taken from {@code arrays} (a merge's, shared by its tensors). */
    static byte[] chunked(ChunkOps ops, ChunkedMethod m, Shape shape, List<TensorView> models, List<TensorView> stats, List<Params> ps,
                          DType out, long chunk, List<String> notes, long[] chunks, HostArrays arrays) {
        ChunkProgram p = m.program(new TensorSetup("t", shape, ps, -1, false, 1, notes::add, stats, arrays));
        long es = out.byteSize();
        byte[] bytes = new byte[(int) (shape.numel() * es)];
        MemorySegment dst = MemorySegment.ofArray(bytes);
        try (TilePool pool = new TilePool(); ChunkRunner r = new ChunkRunner(ops, p, null, models, stats, shape, chunk, pool, ChunkRunner.Reads.NONE)) {
            chunks[0] = r.chunks();
            r.reduce();
            for (long k = 0; k < r.chunks(); k++) {
                Tile t = r.combine(k);
                ops.store(t, out, dst.asSlice(r.offsetOf(k) * es, t.size() * es));
            }
        }
        return bytes;
    }

    @Test
    void fisherInChunksGivesTheWholeTensorBytes() {
        Shape shape = Shape.of(23, 531);
        int n = (int) shape.numel();
        SplittableRandom r = new SplittableRandom(11);
        try (Arena arena = Arena.ofShared()) {
            for (int count : new int[] {2, 3}) {
                for (DType statType : List.of(DType.F32, DType.BF16)) {
                    List<TensorView> models = new ArrayList<>(), stats = new ArrayList<>();
                    List<Params> ps = new ArrayList<>();
                    for (int j = 0; j < count; j++) {
                        float[] th = new float[n], f = new float[n];
                        for (int i = 0; i < n; i++) {
                            th[i] = (float) r.nextGaussian();
                            // Fisher values spread over orders of magnitude, some zero (ε decides there)
                            f[i] = r.nextInt(16) == 0 ? 0f : (float) (Math.exp(r.nextGaussian() * 3) * 1e-4);
                        }
                        models.add(view("m" + j, th, DType.BF16, shape, arena));
                        stats.add(view("f" + j, f, statType, shape, arena));
                        ps.add(params(Fisher.SPEC, Map.of("weight", 0.5 + j, MethodSpec.FISHER_NORM_PARAM, 0.3 + 0.7 * j)));
                    }
                    for (Fisher fisher : List.of(new Fisher(true, 1e-6), new Fisher(false, 1e-3))) {
                        List<String> notes = new ArrayList<>();
                        byte[] expect = whole(fisher, shape, models, stats, ps, DType.BF16, notes);
                        for (Backend be : backends()) {
                            for (long chunk : new long[] {1000, 531 * 3 + 17, 7}) {
                                long[] chunks = {0};
                                byte[] got = chunked(be.chunkOps().orElseThrow(), fisher, shape, models, stats, ps, DType.BF16, chunk, notes, chunks);
                                assertTrue(chunks[0] > 5, "the tensor is cut into many chunks: " + chunks[0]);
                                same(expect, got, 2, "fisher " + fisher + " " + count + " models, " + statType + " stats, " + be.name() + ", chunks of " + chunk);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void fisherWithoutItsStatisticIsAnErrorNamingTheTensor() {
        Shape shape = Shape.of(4, 4);
        List<Params> ps = List.of(params(Fisher.SPEC, Map.of("weight", 1.0, MethodSpec.FISHER_NORM_PARAM, 1.0)));
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> new Fisher(true, 1e-6).program(new TensorSetup("model.norm.weight", shape, ps, -1, false, 1, s -> { })));
        assertTrue(e.getMessage().contains("'model.norm.weight'") && e.getMessage().contains("stats file") && !e.getMessage().contains("\n"), e.getMessage());
    }

    /** G = XᵀX/t from random X [t, in] with channel scales; {@code dead} channel (≥ 0) always zero, so G is singular. */
    static float[] gram(SplittableRandom r, int in, int dead) {
        int t = 2 * in;
        float[] x = new float[t * in];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (1 + (i % in) % 3));
        if (dead >= 0) for (int k = 0; k < t; k++) x[k * in + dead] = 0f;
        float[] g = new float[in * in];
        for (int i = 0; i < in; i++) {
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int k = 0; k < t; k++) s += (double) x[k * in + i] * x[k * in + j];
                g[i * in + j] = g[j * in + i] = (float) (s / t);
            }
        }
        return g;
    }

    @Test
    void regmeanInRowChunksGivesTheWholeTensorBytes() {
        int rows = 131, in = 300;
        Shape shape = Shape.of(rows, in), gs = Shape.of(in, in);
        SplittableRandom r = new SplittableRandom(5);
        record Case(double alpha, double ridge, double[] w, int dead, DType out) {}
        List<Case> cases = List.of(new Case(0.9, 0, new double[] {1, 2}, -1, DType.BF16),
                new Case(0.5, 0.01, new double[] {0.7, 1.3}, -1, DType.F32),
                new Case(1.0, 0, new double[] {1, 0}, -1, DType.F32),
                // a channel no token reaches: not positive definite, the pivoted least-squares path and its note
                new Case(1.0, 0, new double[] {1, 1}, 17, DType.F32));
        try (Arena arena = Arena.ofShared()) {
            for (Case c : cases) {
                List<TensorView> models = new ArrayList<>(), stats = new ArrayList<>();
                List<Params> ps = new ArrayList<>();
                for (int j = 0; j < c.w().length; j++) {
                    float[] w = new float[rows * in];
                    for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.05f;
                    models.add(view("w" + j, w, DType.BF16, shape, arena));
                    stats.add(view("gram" + j, gram(r, in, c.dead()), DType.F32, gs, arena));
                    ps.add(params(RegMean.SPEC, Map.of("weight", c.w()[j])));
                }
                RegMean m = new RegMean(c.alpha(), c.ridge());
                List<String> expectNotes = new ArrayList<>();
                byte[] expect = whole(m, shape, models, stats, ps, c.out(), expectNotes);
                assertEquals(c.dead() >= 0, !expectNotes.isEmpty(), "the singular case takes the least-squares path: " + expectNotes);
                for (Backend be : backends()) {
                    // less than a row (one row per chunk), 7 rows (the last of 19 chunks partial), 64 rows and change
                    // the solves are host code on every backend: the other backend's ops on one cut
                    for (long chunk : be == jb ? new long[] {5, 7L * in, 64L * in + 13} : new long[] {7L * in}) {
                        List<String> notes = new ArrayList<>();
                        long[] chunks = {0};
                        byte[] got = chunked(be.chunkOps().orElseThrow(), m, shape, models, stats, ps, c.out(), chunk, notes, chunks);
                        assertTrue(chunks[0] > 1, "several chunks");
                        same(expect, got, c.out().byteSize(), "regmean " + c + " on " + be.name() + ", chunks of " + chunk);
                        assertEquals(expectNotes, notes, "the chunked path logs the whole-tensor path's note once");
                    }
                }
            }
            // a tensor without Grams: the weighted average as one combine pass
            List<TensorView> models = new ArrayList<>();
            List<Params> ps = new ArrayList<>();
            for (int j = 0; j < 2; j++) {
                float[] w = new float[rows * in];
                for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
                models.add(view("e" + j, w, DType.BF16, shape, arena));
                ps.add(params(RegMean.SPEC, Map.of("weight", 0.3 + j)));
            }
            byte[] expect = whole(new RegMean(0.9, 0), shape, models, List.of(), ps, DType.BF16, new ArrayList<>());
            for (Backend be : backends()) {
                byte[] got = chunked(be.chunkOps().orElseThrow(), new RegMean(0.9, 0), shape, models, List.of(), ps, DType.BF16, 1001, new ArrayList<>(), new long[1]);
                same(expect, got, 2, "regmean without Grams on " + be.name());
            }
        }
    }

    /**
     * The float64 arrays a Linear's row solves hold are the ones the plan counts (docs/data-informed.md,
     * "Memory"): A's factor and one G~ (8·in² each, inside {@link ChunkProgram#heldBytes}) and a chunk's B
     * and transposed rows (8 bytes per chunk element each, inside {@link ChunkProgram#hostBytesPerElement}),
     * and the next Linear of the same width takes the same arrays from the merge instead of new ones
     * (new ones left the last as garbage, and the heap grew past the plan). A wider Linear drops them.
     */
    @Test
    void regmeanSolvesHoldWhatThePlanCountsAndTheNextLinearReusesThem() {
        int rows = 40, in = 96, rc = 7;
        Shape shape = Shape.of(rows, in), gs = Shape.of(in, in);
        SplittableRandom r = new SplittableRandom(23);
        try (Arena arena = Arena.ofShared()) {
            HostArrays arrays = new HostArrays();
            RegMean m = new RegMean(0.9, 0.001);
            long[] allocatedAfter = new long[3];
            for (int linear = 0; linear < 3; linear++) {
                int width = linear < 2 ? in : in + 8;
                Shape s = Shape.of(rows, width), g = Shape.of(width, width);
                List<TensorView> models = new ArrayList<>(), stats = new ArrayList<>();
                List<Params> ps = new ArrayList<>();
                for (int j = 0; j < 2; j++) {
                    float[] w = new float[rows * width];
                    for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.05f;
                    models.add(view("w" + linear + j, w, DType.BF16, s, arena));
                    stats.add(view("gram" + linear + j, gram(r, width, -1), DType.F32, g, arena));
                    ps.add(params(RegMean.SPEC, Map.of("weight", 1.0 + j)));
                }
                long before = arrays.allocatedBytes();
                byte[] got = chunked(jb.chunkOps().orElseThrow(), m, s, models, stats, ps, DType.F32, (long) rc * width, new ArrayList<>(), new long[1], arrays);
                same(whole(m, s, models, stats, ps, DType.F32, new ArrayList<>()), got, 4, "regmean, Linear " + linear + " of a merge's arrays");
                allocatedAfter[linear] = arrays.allocatedBytes();
                long heap = 2L * 8 * width * width + 2L * 8 * rc * width;
                ChunkProgram p = m.program(new TensorSetup("t", s, ps, -1, false, 1, x -> { }, stats));
                if (linear != 1) {
                    assertEquals(heap, allocatedAfter[linear] - before, "A's factor and G~ (8·in² each), B and the transposed rows (8·in·rc each)");
                }
                assertTrue(p.heldBytes() >= 2L * 8 * width * width, "held bytes count the factor and G~: " + p.heldBytes());
                assertTrue(p.hostBytesPerElement() >= 16, "per chunk element: B and the transposed rows in float64");
                assertEquals(heap, arrays.freeBytes(), "every array goes back to the merge after the Linear's last row");
            }
            assertEquals(allocatedAfter[0], allocatedAfter[1], "the second Linear of the width allocates nothing: it reuses the first one's arrays");
        }
    }

    @Test
    void regmeanStatesItsGramsAndLeavesStoredInOutToTheWholeTensorPath() {
        List<Params> ps = List.of(params(RegMean.SPEC, Map.of("weight", 1.0)));
        try (Arena arena = Arena.ofShared()) {
            List<TensorView> g = List.of(view("g", new float[36], DType.F32, Shape.of(6, 6), arena));
            ChunkProgram p = new RegMean(0.9, 0).program(new TensorSetup("t", Shape.of(10, 6), ps, -1, false, 1, s -> { }, g));
            assertEquals(6, p.align(), "chunks of whole rows");
            assertEquals(RegMean.gramBytes(6), p.heldBytes());
            assertTrue(p.heldBytes() >= 2 * 8 * 36, "the float64 factor and one shrunk Gram at least");
            assertNull(new RegMean(0.9, 0, true).program(new TensorSetup("t", Shape.of(6, 10), ps, -1, false, 1, s -> { }, g)));
        }
    }

    @Test
    void aNonFiniteGramIsAnErrorNamingItsFileAndTheFix() {
        int rows = 4, in = 6;
        List<Params> ps = List.of(params(RegMean.SPEC, Map.of("weight", 1.0)));
        try (Arena arena = Arena.ofShared()) {
            float[] g = gram(new SplittableRandom(1), in, -1);
            g[13] = Float.POSITIVE_INFINITY;
            List<TensorView> stats = List.of(view("model.layers.0.mlp.gate_proj.weight", g, DType.F32, Shape.of(in, in), arena));
            List<TensorView> models = List.of(view("w", new float[rows * in], DType.F32, Shape.of(rows, in), arena));
            CheckpointException e = assertThrows(CheckpointException.class, () -> chunked(jb.chunkOps().orElseThrow(), new RegMean(0.9, 0),
                    Shape.of(rows, in), models, stats, ps, DType.F32, in, new ArrayList<>(), new long[1]));
            assertTrue(e.getMessage().contains("Gram 'model.layers.0.mlp.gate_proj.weight' in test file") && e.getMessage().contains("element 13")
                    && e.getMessage().contains("--stat gram") && !e.getMessage().contains("\n"), e.getMessage());
        }
    }

    private static void same(byte[] expect, byte[] got, int es, String what) {
        if (java.util.Arrays.equals(expect, got)) return;
        for (int i = 0; i < expect.length; i += es) {
            if (!java.util.Arrays.equals(expect, i, i + es, got, i, i + es)) {
                fail(what + ": element " + (i / es) + " is " + HexFormat.of().formatHex(got, i, i + es) + ", whole-tensor path gives "
                        + HexFormat.of().formatHex(expect, i, i + es));
            }
        }
    }
}
