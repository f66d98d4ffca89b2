package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodRegistry;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkRunner;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * karcher, multislerp and row-wise nuslerp as passes over chunks against their whole-tensor path (the
 * oracle: float32 tiles of whole tensors on the Java backend), byte for byte: random tensors of odd
 * shapes, chunks that cut rows and reduction blocks, the Java chunk ops on one and three threads and
 * the native ones. Outputs are float32 where a step more or less would hide in bf16 rounding: the
 * chunked karcher must take exactly the oracle's steps. Inputs are Gaussian: "near" models are
 * fine-tunes of one base (karcher converges in a few steps), "far" ones independent (it runs to max_iter).
 */
class IterativeChunkedTest {
    private static final ValueLayout.OfFloat F32LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static JavaBackend oracle, one, three;
    private static NativeBackend nat;

    @BeforeAll
    static void open() {
        oracle = new JavaBackend(2);
        one = new JavaBackend(1);
        three = new JavaBackend(3);
        if (NativeBackend.isAvailable()) nat = new NativeBackend(2);
    }

    @AfterAll
    static void close() {
        oracle.close();
        one.close();
        three.close();
        if (nat != null) nat.close();
    }

    private static List<Backend> chunkBackends() { return nat == null ? List.of(one, three) : List.of(one, three, nat); }

    /** Inputs: Gaussian base; models base + spread·noise (spread 0: a copy of the base; negative: base − the previous model's change). */
    enum Kind { NEAR, FAR }

    /**
     * One merge. {@code base}: 0 none, 1 unlisted base, 2 the base listed as model 1. {@code zero}: index of a model
     * whose values are all zero (multislerp with a base: equal to the base), or -1. {@code antipodal}: model 1 is base − (model 0 − base)
     * (karcher: −model 0), on a grid so exactly.
     */
    record Case(String method, Map<String, Object> global, List<Map<String, Object>> perModel, long[] dims, DType in, DType out,
                int base, Kind kind, int zero, boolean antipodal) {
        @Override public String toString() {
            return method + " " + global + " " + perModel.size() + " models " + Arrays.toString(dims) + " " + in + "->" + out
                    + " base " + base + " " + kind + (zero >= 0 ? " zero " + zero : "") + (antipodal ? " antipodal" : "");
        }
    }

    private static Map<String, Object> m(Object... kv) {
        java.util.LinkedHashMap<String, Object> x = new java.util.LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) x.put((String) kv[i], kv[i + 1]);
        return x;
    }

    private static List<Map<String, Object>> none(int n) { return java.util.Collections.nCopies(n, m()); }

    static Stream<Arguments> cases() {
        long[] mat = {23, 531}, flat = {12_345}, cube = {7, 13, 29}, tiny = {5};
        List<Case> cs = new ArrayList<>();
        // karcher: converging early, running to max_iter, tol 0 (every step), an unlisted or listed base, a zero input, one input
        cs.add(new Case("karcher", m(), none(3), mat, DType.BF16, DType.F32, 1, Kind.NEAR, -1, false));
        cs.add(new Case("karcher", m("max_iter", 7.0, "tol", 1e-9), none(3), flat, DType.F32, DType.F32, 0, Kind.FAR, -1, false));
        cs.add(new Case("karcher", m("tol", 0.0), none(2), cube, DType.F32, DType.F32, 1, Kind.FAR, -1, false));
        cs.add(new Case("karcher", m(), List.of(m(), m(), m()), mat, DType.BF16, DType.BF16, 2, Kind.NEAR, -1, false));
        cs.add(new Case("karcher", m("max_iter", 4.0), none(3), flat, DType.F32, DType.F32, 0, Kind.FAR, 1, false));
        cs.add(new Case("karcher", m(), none(2), flat, DType.F32, DType.F32, 0, Kind.FAR, 0, false));
        cs.add(new Case("karcher", m("max_iter", 0.0), none(3), mat, DType.F32, DType.F32, 1, Kind.FAR, -1, false));
        cs.add(new Case("karcher", m(), none(1), mat, DType.BF16, DType.BF16, 0, Kind.FAR, -1, false));
        cs.add(new Case("karcher", m(), none(2), tiny, DType.F32, DType.F32, 1, Kind.FAR, -1, false));
        cs.add(new Case("karcher", m("max_iter", 3.0), none(2), mat, DType.F32, DType.F32, 0, Kind.FAR, -1, true));
        // the mean of x and −x is ~0 and no step is taken: the combine's first iterate is the first unit
        cs.add(new Case("karcher", m("max_iter", 0.0), none(2), mat, DType.F32, DType.F32, 0, Kind.FAR, -1, true));
        // multislerp: task vectors or raw tensors, weights normalised or not, the antipodal fallback, one model
        List<Map<String, Object>> w3 = List.of(m("weight", 0.5), m("weight", 1.25), m("weight", 0.8));
        cs.add(new Case("multislerp", m(), w3, mat, DType.BF16, DType.F32, 1, Kind.NEAR, -1, false));
        cs.add(new Case("multislerp", m("normalize_weights", false), w3, cube, DType.F32, DType.F32, 0, Kind.FAR, -1, false));
        cs.add(new Case("multislerp", m("eps", 1e-4), w3.subList(0, 2), flat, DType.BF16, DType.BF16, 1, Kind.FAR, -1, false));
        cs.add(new Case("multislerp", m(), w3, mat, DType.F32, DType.F32, 2, Kind.NEAR, -1, false));
        cs.add(new Case("multislerp", m(), List.of(m("weight", 1.0), m("weight", 1.0)), flat, DType.F32, DType.F32, 1, Kind.FAR, -1, true));
        cs.add(new Case("multislerp", m(), w3.subList(0, 1), mat, DType.BF16, DType.BF16, 1, Kind.FAR, -1, false));
        // nuslerp along axis 0: columns longer than a reduction block (4500 rows: block edge at row 4096 inside a chunk), a 3-D tensor
        Map<String, Object> cols = m("nuslerp_flatten", false, "nuslerp_row_wise", true);
        List<Map<String, Object>> w2 = List.of(m("weight", 0.3), m("weight", 0.7));
        cs.add(new Case("nuslerp", cols, w2, new long[] {4500, 3}, DType.BF16, DType.F32, 1, Kind.NEAR, -1, false));
        cs.add(new Case("nuslerp", cols, w2, mat, DType.F32, DType.BF16, 0, Kind.FAR, -1, false));
        cs.add(new Case("nuslerp", cols, List.of(m("weight", 1.0), m("weight", 0.25)), cube, DType.BF16, DType.F32, 1, Kind.FAR, -1, false));
        cs.add(new Case("nuslerp", cols, w2, flat, DType.F32, DType.F32, 1, Kind.NEAR, -1, false));
        return cs.stream().map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void chunkedGivesTheWholeTensorBytes(Case c) {
        try (Arena arena = Arena.ofConfined()) {
            Setup s = setup(c, arena);
            byte[] expect = wholeTensor(c, s);
            long cols = Shape.of(c.dims()).cols();
            int passes = -1;
            for (Backend be : chunkBackends()) {
                // chunks cutting rows and reduction blocks (4096 + 17), a single row's worth, one chunk for all
                for (long chunk : new long[] {1000, 4113, cols * 2 + 1, 1L << 20}) {
                    Run r = chunked(be.chunkOps().orElseThrow(), c, s, chunk);
                    same(expect, r.bytes(), c.out(), be.name() + " (" + be + ") chunks of " + chunk);
                    if (passes >= 0) assertEquals(passes, r.passes(), "the same steps on every backend and chunk size");
                    passes = r.passes();
                }
            }
            if (c.method().equals("karcher") && c.perModel().size() + (c.base() == 1 ? 1 : 0) > 1) {
                int maxIter = ((Number) c.global().getOrDefault("max_iter", 10.0)).intValue();
                // ‖x_i‖, the mean's norm, three per step, and the two of the step that found ‖T‖ < tol unless max_iter ran out
                int steps = (passes - 2) / 3;
                assertTrue(passes == 2 + 3 * steps + 2 && steps < maxIter || passes == 2 + 3 * maxIter, "karcher passes: " + passes);
                if (c.kind() == Kind.NEAR) assertTrue(steps >= 1 && steps < maxIter, "fine-tunes converge in a few steps, not " + steps);
                double tol = ((Number) c.global().getOrDefault("tol", 1e-5)).doubleValue();
                if (c.kind() == Kind.FAR && c.zero() < 0 && tol < 1e-8) assertEquals(2 + 3 * maxIter, passes, "below float32's noise the steps run to max_iter");
            }
        }
    }

    /**
     * karcher over several chunks, every step taken (tol 0, far inputs): each pass after a step reads
     * the iterate its chunk kept (docs/methods.md, "Passes over chunks") and renormalises it by that
     * step's factor, so reading another chunk's iterate, or renormalising by another step's factor or
     * not at all, changes the bytes. Most steps' factor rounds to 1f; these inputs were picked for
     * two of ten steps whose factor does not. Chunks of 1000 (4, the last of one element), 377 (8,
     * the last of 362) and one for all (the iterate kept in the scratch tile), on one and three
     * threads and the native ops.
     */
    @Test
    void karcherReadsEachChunksKeptIterate() {
        Case c = new Case("karcher", m("max_iter", 10.0, "tol", 0.0), none(2), new long[] {3001}, DType.F32, DType.F32, 1, Kind.FAR, -1, false);
        try (Arena arena = Arena.ofConfined()) {
            Setup s = setup(c, arena);
            byte[] expect = wholeTensor(c, s);
            for (Backend be : chunkBackends()) {
                for (long chunk : new long[] {1000, 377, 1L << 20}) {
                    Run r = chunked(be.chunkOps().orElseThrow(), c, s, chunk);
                    same(expect, r.bytes(), c.out(), be.name() + " (" + be + ") chunks of " + chunk);
                    // ‖x_i‖, the mean's norm, then three passes for each of the 10 steps
                    assertEquals(2 + 3 * 10, r.passes(), "every step taken");
                }
            }
        }
    }

    /** Multislerp with three models whose unit mean is zero: the same one-line error on both paths, naming the tensor. */
    @Test
    void multislerpRefusesAZeroMeanOfThreeOnBothPaths() {
        Case c = new Case("multislerp", m(), List.of(m("weight", 1.0), m("weight", 1.0), m("weight", 1.0)), new long[] {9, 31},
                DType.F32, DType.F32, 1, Kind.FAR, 2, true);
        try (Arena arena = Arena.ofConfined()) {
            Setup s = setup(c, arena);
            ConfigException whole = assertThrows(ConfigException.class, () -> wholeTensor(c, s));
            for (Backend be : chunkBackends()) {
                ConfigException e = assertThrows(ConfigException.class, () -> chunked(be.chunkOps().orElseThrow(), c, s, 100));
                assertEquals(whole.getMessage(), e.getMessage());
                assertTrue(e.getMessage().contains(Harness.TENSOR) && e.getMessage().contains("change the weights"), e.getMessage());
            }
        }
    }

    /** Passthrough given two models for a tensor: the same one-line error on both paths, naming the tensor and the fix. */
    @Test
    void passthroughRefusesTwoModelsOnBothPaths() {
        Case c = new Case("passthrough", m(), List.of(m(), m("scale", 2.0)), new long[] {4, 7}, DType.F32, DType.F32, 0, Kind.FAR, -1, false);
        try (Arena arena = Arena.ofConfined()) {
            Setup s = setup(c, arena);
            ConfigException whole = assertThrows(ConfigException.class, () -> wholeTensor(c, s));
            ConfigException chunked = assertThrows(ConfigException.class, () -> chunked(one.chunkOps().orElseThrow(), c, s, 10));
            assertEquals(whole.getMessage(), chunked.getMessage());
            assertTrue(chunked.getMessage().contains(Harness.TENSOR) && chunked.getMessage().contains("use slices with one source each"), chunked.getMessage());
        }
    }

    /** Working memory of the chunked programs is the chunk's, whatever the tensor's size: 1 and 64 rows of 4099, chunks of 1000. */
    @Test
    void workingMemoryDoesNotGrowWithTheTensor() {
        for (String method : List.of("karcher", "multislerp")) {
            long[] peaks = new long[2];
            long[][] dims = {{1, 4099}, {64, 4099}};
            for (int k = 0; k < 2; k++) {
                Case c = new Case(method, m(), List.of(m("weight", 0.5), m("weight", 1.0)), dims[k], DType.BF16, DType.BF16, 1, Kind.NEAR, -1, false);
                if (method.equals("karcher")) c = new Case(method, m(), none(2), dims[k], DType.BF16, DType.BF16, 1, Kind.NEAR, -1, false);
                try (Arena arena = Arena.ofConfined()) {
                    peaks[k] = chunked(one.chunkOps().orElseThrow(), c, setup(c, arena), 1000).peak();
                }
            }
            assertEquals(peaks[0], peaks[1], method + ": working memory must not grow with the tensor");
            // inputs (two models, base), scratch and output chunks of 1000 float32
            assertTrue(peaks[1] <= 8 * 1000 * 4, method + " holds " + peaks[1] + " bytes");
        }
    }

    // ------------------------------------------------------------------------------------------ harness

    private record Setup(MergeMethod method, List<Params> params, TensorView base, List<TensorView> models, int baseIndex) {}

    private record Run(byte[] bytes, int passes, long peak) {}

    private static Setup setup(Case c, Arena arena) {
        MethodSpec spec = MethodRegistry.get(c.method());
        Shape shape = Shape.of(c.dims());
        int n = Math.toIntExact(shape.numel()), count = c.perModel().size();
        SplittableRandom r = new SplittableRandom(c.toString().hashCode());
        // antipodal: values on a grid, so base ± τ is exact
        float[] base = new float[n];
        for (int i = 0; i < n; i++) base[i] = c.antipodal() ? (r.nextInt(64) - 32) / 16f : (float) r.nextGaussian();
        List<float[]> xs = new ArrayList<>();
        for (int j = 0; j < count; j++) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                // a zero input: zeros for karcher (raw tensors), the base for multislerp with a base (a zero task vector)
                if (j == c.zero()) x[i] = c.method().equals("multislerp") && c.base() > 0 ? base[i] : 0f;
                // karcher works on the raw tensors: x₁ = −x₀, so the mean of the units is zero (the first unit is the start)
                else if (c.antipodal() && j == 1 && c.method().equals("karcher")) x[i] = -xs.get(0)[i];
                else if (c.antipodal() && j == 1) x[i] = base[i] - (xs.get(0)[i] - base[i]);
                else if (c.antipodal()) x[i] = base[i] + (r.nextInt(33) - 16) / 8f;
                else if (c.kind() == Kind.NEAR) x[i] = base[i] + 0.4f * (float) r.nextGaussian();
                else x[i] = (float) r.nextGaussian();
            }
            xs.add(x);
        }
        int baseIndex = c.base() == 2 ? 1 : -1;
        TensorView bv = c.base() == 0 ? null : view("base", base, c.in(), shape, arena);
        List<TensorView> models = new ArrayList<>();
        List<Params> ps = new ArrayList<>();
        for (int j = 0; j < count; j++) {
            models.add(j == baseIndex ? bv : view("m" + j, xs.get(j), c.in(), shape, arena));
            ps.add(Harness.params(spec.perModel(), c.perModel().get(j), "models[" + j + "].parameters"));
        }
        return new Setup(spec.factory().create(Harness.params(spec.global(), c.global(), "parameters")), ps, bv, models, baseIndex);
    }

    private static TensorView view(String name, float[] x, DType dt, Shape shape, Arena arena) {
        MemorySegment s = arena.allocate((long) x.length * dt.byteSize(), 8);
        for (int i = 0; i < x.length; i++) {
            switch (dt) {
                case F32 -> s.setAtIndex(F32LE, i, x[i]);
                case BF16 -> s.setAtIndex(S16, i, Floats.floatToBf16(x[i]));
                default -> throw new IllegalArgumentException(dt.toString());
            }
        }
        return new TensorView(name, dt, shape, s, "test");
    }

    /** The oracle: whole-tensor float32 tiles on the Java backend, then stored. */
    private static byte[] wholeTensor(Case c, Setup s) {
        Shape shape = Shape.of(c.dims());
        try (TilePool pool = new TilePool()) {
            List<Tile> held = new ArrayList<>();
            Tile base = null;
            if (s.base() != null) {
                base = pool.borrow(shape);
                held.add(base);
                oracle.load(s.base(), base);
            }
            List<Tile> ms = new ArrayList<>();
            for (int j = 0; j < s.models().size(); j++) {
                if (j == s.baseIndex()) { ms.add(base); continue; }
                Tile t = pool.borrow(shape);
                held.add(t);
                oracle.load(s.models().get(j), t);
                ms.add(t);
            }
            Tile out = pool.borrow(shape);
            held.add(out);
            try {
                s.method().merge(new MergeContext(oracle, pool, 1, note -> { }), new MergeInputs(Harness.TENSOR, base, ms, s.params(), s.baseIndex(), 3), out);
                MemorySegment bytes = MemorySegment.ofArray(new byte[(int) (shape.numel() * c.out().byteSize())]);
                oracle.store(out, c.out(), bytes);
                return bytes.toArray(ValueLayout.JAVA_BYTE);
            } finally {
                pool.releaseAll(held);
            }
        }
    }

    /** The chunked program on one backend's chunk ops, chunk by chunk into the output bytes. */
    private static Run chunked(ChunkOps ops, Case c, Setup s, long chunk) {
        Shape shape = Shape.of(c.dims());
        ChunkProgram p = ((ChunkedMethod) s.method()).program(new TensorSetup(Harness.TENSOR, shape, s.params(), s.baseIndex(), s.base() != null, 1, note -> { }));
        assertTrue(p != null, c + " must run in chunks");
        long es = c.out().byteSize();
        byte[] out = new byte[(int) (shape.numel() * es)];
        MemorySegment dst = MemorySegment.ofArray(out);
        try (TilePool pool = new TilePool(); ChunkRunner r = new ChunkRunner(ops, p, s.base(), s.models(), shape, chunk, pool)) {
            r.reduce();
            for (long k = 0; k < r.chunks(); k++) {
                Tile t = r.combine(k);
                ops.store(t, c.out(), dst.asSlice(r.offsetOf(k) * es, t.size() * es));
            }
            return new Run(out, r.reductionPasses(), pool.peakBorrowedBytes());
        }
    }

    private static void same(byte[] expect, byte[] got, DType dt, String what) {
        if (Arrays.equals(expect, got)) return;
        int es = dt.byteSize();
        for (int i = 0; i < expect.length; i += es) {
            if (!Arrays.equals(expect, i, i + es, got, i, i + es)) {
                fail(what + ": element " + (i / es) + " is " + HexFormat.of().formatHex(got, i, i + es) + ", whole-tensor path gives "
                        + HexFormat.of().formatHex(expect, i, i + es));
            }
        }
    }
}
