package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every chunked method against its whole-tensor path (the oracle: float32 tiles of whole tensors
 * on the Java backend, stored in the output dtype), byte for byte, on the Java and native chunk
 * ops, with chunks far smaller than the tensor (a partial last chunk, chunk edges off the reduction
 * blocks and off the rows) and task vectors built so that many magnitudes tie at the thresholds.
 */
class ChunkedEquivalenceTest {
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

    /** One merge: method, its global and per-model parameters, shape, input and output dtypes, whether the base is listed among the models. */
    record Case(String method, Map<String, Object> global, List<Map<String, Object>> perModel, long[] dims, DType in, DType out,
                boolean baseListed) {
        @Override public String toString() {
            return method + " " + global + " " + perModel + " " + java.util.Arrays.toString(dims) + " " + in + "->" + out + (baseListed ? " base listed" : "");
        }
    }

    private static Map<String, Object> m(Object... kv) {
        java.util.LinkedHashMap<String, Object> x = new java.util.LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) x.put((String) kv[i], kv[i + 1]);
        return x;
    }

    static Stream<Arguments> cases() {
        long[] big = {23, 531}, flat = {12_345}, tiny = {5};
        List<Case> cs = new ArrayList<>();
        for (DType in : List.of(DType.F32, DType.BF16)) {
            cs.add(new Case("ties", m(), List.of(m("weight", 0.7, "density", 0.3), m("weight", 0.5, "density", 0.55), m("weight", 1.0, "density", 0.9)), big, in, DType.BF16, false));
            cs.add(new Case("ties", m("rescale", true, "normalize", false, "lambda", 0.8), List.of(m("weight", 0.7, "density", 0.3), m("weight", -0.4, "density", 0.2)), flat, in, DType.F32, false));
            cs.add(new Case("dare_ties", m(), List.of(m("weight", 0.7, "density", 0.4), m("weight", 0.5, "density", 0.6)), big, in, DType.BF16, false));
            cs.add(new Case("dare_ties", m("rescale", "density", "normalize", true), List.of(m("weight", 0.7, "density", 0.4), m("weight", 0.5, "density", 1.0)), big, in, DType.F32, false));
            cs.add(new Case("dare_linear", m(), List.of(m("weight", 0.7, "density", 0.4), m("weight", 0.5, "density", 0.6)), flat, in, DType.F32, false));
            cs.add(new Case("dare_linear", m("rescale", "false", "lambda", 1.5), List.of(m("weight", 0.7, "density", 0.4), m("weight", 0.5, "density", 0.6)), big, in, DType.BF16, false));
            cs.add(new Case("breadcrumbs", m(), List.of(m("weight", 0.7, "density", 0.5, "gamma", 0.05), m("weight", 0.5, "density", 0.3, "gamma", 0.2)), big, in, DType.BF16, false));
            cs.add(new Case("breadcrumbs", m("rescale", true, "normalize", true), List.of(m("weight", 0.7, "density", 0.5, "gamma", 0.0), m("weight", 0.5, "density", 0.6, "gamma", 0.7)), flat, in, DType.F32, false));
            cs.add(new Case("breadcrumbs_ties", m(), List.of(m("weight", 0.7, "density", 0.3, "gamma", 0.1), m("weight", 0.5, "density", 0.5, "gamma", 0.01), m("weight", 0.2, "density", 0.1, "gamma", 0.3)), big, in, DType.BF16, false));
        }
        long[] cube = {7, 13, 29};
        cs.add(new Case("della", m(), List.of(m("weight", 0.7, "density", 0.4, "epsilon", 0.1), m("weight", 0.5, "density", 0.6, "epsilon", 0.2)), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("della", m("rescale", false), List.of(m("weight", 0.7, "density", 0.4), m("weight", 0.5, "density", 1.0)), cube, DType.F32, DType.F32, false));
        cs.add(new Case("della_linear", m(), List.of(m("weight", 0.7, "density", 0.3, "epsilon", 0.05), m("weight", 0.5, "density", 0.5)), big, DType.F32, DType.BF16, false));
        cs.add(new Case("della_linear", m("normalize", true), List.of(m("weight", 0.7, "density", 0.3), m("weight", 0.5, "density", 0.5)), flat, DType.BF16, DType.F32, false));
        cs.add(new Case("model_stock", m(), List.of(m(), m(), m()), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("model_stock", m("filter_wise", true), List.of(m(), m()), big, DType.F32, DType.F32, false));
        cs.add(new Case("model_stock", m("filter_wise", true), List.of(m(), m(), m()), cube, DType.BF16, DType.F32, false));
        cs.add(new Case("nuslerp", m(), List.of(m("weight", 0.3), m("weight", 0.7)), flat, DType.BF16, DType.BF16, false));
        cs.add(new Case("nuslerp", m("nuslerp_flatten", false), List.of(m("weight", 0.3), m("weight", 0.7)), big, DType.F32, DType.F32, false));
        cs.add(new Case("nuslerp", m("nuslerp_flatten", false), List.of(m("weight", 1.0), m("weight", 0.25)), cube, DType.BF16, DType.F32, false));
        cs.add(new Case("sce", m(), List.of(m(), m(), m()), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("sce", m("select_topk", 0.3), List.of(m(), m(), m()), big, DType.BF16, DType.F32, false));
        cs.add(new Case("sce", m("select_topk", 0.55), List.of(m(), m()), flat, DType.F32, DType.F32, false));
        cs.add(new Case("sce", m("select_topk", 0.00001), List.of(m(), m()), tiny, DType.F32, DType.F32, false));
        cs.add(new Case("linear", m(), List.of(m("weight", 0.2), m("weight", 0.5), m("weight", 0.9)), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("task_arithmetic", m("lambda", 0.8, "normalize", true), List.of(m("weight", 0.6), m("weight", 1.1)), flat, DType.F32, DType.F16, false));
        cs.add(new Case("task_arithmetic", m(), List.of(m("weight", 0.6), m("weight", 1.0), m("weight", 1.1)), big, DType.BF16, DType.BF16, true));
        cs.add(new Case("nearswap", m("t", 0.5), List.of(m()), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("model_stock", m(), List.of(m(), m(), m()), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("model_stock", m("filter_wise", true), List.of(m(), m()), big, DType.F32, DType.F32, false));
        cs.add(new Case("model_stock", m("filter_wise", true), List.of(m(), m(), m()), cube, DType.BF16, DType.F32, false));
        cs.add(new Case("nuslerp", m(), List.of(m("weight", 0.3), m("weight", 0.7)), flat, DType.BF16, DType.BF16, false));
        cs.add(new Case("nuslerp", m("nuslerp_flatten", false), List.of(m("weight", 0.3), m("weight", 0.7)), big, DType.F32, DType.F32, false));
        cs.add(new Case("nuslerp", m("nuslerp_flatten", false), List.of(m("weight", 1.0), m("weight", 0.25)), cube, DType.BF16, DType.F32, false));
        cs.add(new Case("nearswap", m("t", 0.001), List.of(m()), flat, DType.F32, DType.F32, false));
        for (double t : new double[] {0.3, 0.85}) {
            cs.add(new Case("slerp", m("t", t), List.of(m()), big, DType.BF16, DType.BF16, false));
            cs.add(new Case("slerp", m("t", t), List.of(m()), flat, DType.F32, DType.F32, false));
        }
        // arcee_fusion: chunks of whole rows (1 or 3 of 531, the last one partial; 2 of 29 in the cube), a 1-D tensor as one chunk
        cs.add(new Case("arcee_fusion", m(), List.of(m()), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("arcee_fusion", m(), List.of(m(), m()), big, DType.F32, DType.F32, true));
        cs.add(new Case("arcee_fusion", m(), List.of(m()), cube, DType.F32, DType.BF16, false));
        cs.add(new Case("arcee_fusion", m(), List.of(m()), flat, DType.F32, DType.F32, false));
        cs.add(new Case("arcee_fusion", m(), List.of(m()), tiny, DType.F32, DType.F32, false));
        // a 1-D tensor of 16 canonical blocks and a partial one: the KL sums over several blocks of one row
        cs.add(new Case("arcee_fusion", m(), List.of(m()), new long[] {(1 << 16) + 7}, DType.BF16, DType.BF16, false));
        // ram / ramplus_tl: any cut; epsilon 0.25 equals many |τ| (the > at the boundary); alpha large so λ follows the tensor's counts
        cs.add(new Case("ram", m(), List.of(m(), m(), m()), big, DType.BF16, DType.BF16, false));
        cs.add(new Case("ram", m("epsilon", 0.25), List.of(m(), m()), flat, DType.F32, DType.F32, false));
        cs.add(new Case("ram", m(), List.of(m(), m(), m()), big, DType.F32, DType.BF16, true));
        cs.add(new Case("ramplus_tl", m("r", 0.5, "alpha", 100.0), List.of(m(), m(), m()), big, DType.BF16, DType.F32, false));
        cs.add(new Case("ramplus_tl", m("r", 0.3, "alpha", 100.0, "epsilon", 0.25), List.of(m(), m()), flat, DType.F32, DType.F32, false));
        cs.add(new Case("ramplus_tl", m(), List.of(m(), m()), tiny, DType.F32, DType.F32, false));
        // passthrough: one combine pass, scaled or the bits unchanged
        cs.add(new Case("passthrough", m(), List.of(m("scale", 0.37)), big, DType.BF16, DType.F32, false));
        cs.add(new Case("passthrough", m(), List.of(m()), flat, DType.BF16, DType.BF16, false));
        // the base listed among the models (skipped, as mergekit), a density that keeps nothing, a tensor smaller than a chunk
        cs.add(new Case("ties", m(), List.of(m("weight", 0.7, "density", 0.3), m("weight", 1.0), m("weight", 0.5, "density", 0.5)), big, DType.BF16, DType.BF16, true));
        cs.add(new Case("ties", m(), List.of(m("weight", 0.7, "density", 0.00001), m("weight", 0.5, "density", 0.5)), big, DType.F32, DType.F32, false));
        cs.add(new Case("breadcrumbs_ties", m(), List.of(m("weight", 0.7, "density", 0.4, "gamma", 0.1), m("weight", 0.5, "density", 0.2)), tiny, DType.F32, DType.F32, false));
        cs.add(new Case("dare_ties", m("rescale", "true"), List.of(m("weight", 0.7, "density", 0.5), m("weight", 0.5, "density", 0.5)), tiny, DType.F16, DType.F16, false));
        return cs.stream().map(Arguments::of);
    }

    /**
     * Stored inputs whose task vectors repeat few magnitudes: base on a 1/16 grid, τ = (k/8)·(1 + j/1024)
     * with k in [-16, 16] and j in [0, 4), so many |τ| are equal (ties at every threshold) and equal
     * high bits hide different low bits (the low-bit pass matters). Exact in float32; bf16 rounds them alike.
     * For arcee_fusion half the changes are uniform in [-2, 2) instead and most are scaled down, so the mask is mixed.
     */
    private static List<TensorView> inputs(Case c, int count, Arena arena, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Shape shape = Shape.of(c.dims());
        int n = (int) shape.numel();
        float[] base = new float[n];
        for (int i = 0; i < n; i++) base[i] = (r.nextInt(64) - 32) / 16f;
        boolean dense = c.method().equals("arcee_fusion");
        List<TensorView> vs = new ArrayList<>();
        vs.add(view("base", base, c.in(), shape, arena));
        for (int j = 0; j < count; j++) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                float tau = r.nextInt(10) == 0 ? 0f : ((r.nextInt(33) - 16) / 8f) * (1f + r.nextInt(4) / 1024f);
                // arcee_fusion: half the changes off the grid, so importances lie dense around its threshold, and
                // all but one in eight scaled by 1/16 (exactly), so the large ones are outliers the mask takes
                if (dense && r.nextBoolean()) tau = (float) (r.nextDouble() * 4 - 2);
                if (dense && r.nextInt(8) != 0) tau /= 16;
                x[i] = base[i] + tau;
            }
            vs.add(view("m" + j, x, c.in(), shape, arena));
        }
        return vs;
    }

    private static TensorView view(String name, float[] x, DType dt, Shape shape, Arena arena) {
        MemorySegment s = arena.allocate((long) x.length * dt.byteSize(), 8);
        for (int i = 0; i < x.length; i++) {
            switch (dt) {
                case F32 -> s.setAtIndex(F32LE, i, x[i]);
                case BF16 -> s.setAtIndex(S16, i, Floats.floatToBf16(x[i]));
                case F16 -> s.setAtIndex(S16, i, Floats.floatToF16(x[i]));
                default -> throw new IllegalArgumentException(dt.toString());
            }
        }
        return new TensorView(name, dt, shape, s, "test");
    }

    private record Setup(MethodSpec spec, MergeMethod method, List<Params> params, TensorView base, List<TensorView> models, int baseIndex) {}

    private static Setup setup(Case c, Arena arena) {
        MethodSpec spec = dev.mergeforge.merge.MethodRegistry.get(c.method());
        int count = c.perModel().size();
        List<TensorView> vs = inputs(c, count, arena, c.toString().hashCode());
        List<TensorView> models = new ArrayList<>();
        List<Params> ps = new ArrayList<>();
        int baseIndex = c.baseListed() ? 1 : -1;
        for (int j = 0; j < count; j++) {
            models.add(j == baseIndex ? vs.getFirst() : vs.get(j + 1));
            ps.add(Harness.params(spec.perModel(), c.perModel().get(j), "models[" + j + "].parameters"));
        }
        MergeMethod method = spec.factory().create(Harness.params(spec.global(), c.global(), "parameters"));
        return new Setup(spec, method, ps, vs.getFirst(), models, baseIndex);
    }

    /** The oracle: whole-tensor float32 tiles on the Java backend, then stored. */
    private static byte[] wholeTensor(Case c, Setup s, long seed, List<String> notes) {
        Shape shape = Shape.of(c.dims());
        try (TilePool pool = new TilePool()) {
            Tile base = pool.borrow(shape);
            jb.load(s.base(), base);
            List<Tile> ms = new ArrayList<>();
            for (int j = 0; j < s.models().size(); j++) {
                if (j == s.baseIndex()) { ms.add(base); continue; }
                Tile t = pool.borrow(shape);
                jb.load(s.models().get(j), t);
                ms.add(t);
            }
            Tile out = pool.borrow(shape);
            s.method().merge(new MergeContext(jb, pool, seed, notes::add), new MergeInputs(Harness.TENSOR, base, ms, s.params(), s.baseIndex(), 3), out);
            MemorySegment bytes = MemorySegment.ofArray(new byte[(int) (shape.numel() * c.out().byteSize())]);
            jb.store(out, c.out(), bytes);
            pool.release(out);
            pool.release(base);
            for (int j = 0; j < ms.size(); j++) if (j != s.baseIndex()) pool.release(ms.get(j));
            return bytes.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** The chunked program on one backend's chunk ops, chunk by chunk into the output bytes. */
    static byte[] chunked(ChunkOps ops, Case c, Setup s, long seed, long chunk, List<String> notes) {
        Shape shape = Shape.of(c.dims());
        return chunked(ops, c, s, chunk, ((ChunkedMethod) s.method()).program(new TensorSetup(Harness.TENSOR, shape, s.params(), s.baseIndex(), true, seed, notes::add)));
    }

    /** As above, running the program given. */
    private static byte[] chunked(ChunkOps ops, Case c, Setup s, long chunk, ChunkProgram p) {
        Shape shape = Shape.of(c.dims());
        long es = c.out().byteSize();
        byte[] out = new byte[(int) (shape.numel() * es)];
        MemorySegment dst = MemorySegment.ofArray(out);
        try (TilePool pool = new TilePool(); ChunkRunner r = new ChunkRunner(ops, p, s.base(), s.models(), shape, chunk, pool)) {
            assertTrue(r.chunks() > 1 || shape.numel() <= r.chunkElements(), "the case must cut the tensor into several chunks");
            r.reduce();
            for (long k = 0; k < r.chunks(); k++) {
                Tile t = r.combine(k);
                ops.store(t, c.out(), dst.asSlice(r.offsetOf(k) * es, t.size() * es));
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void chunkedGivesTheWholeTensorBytes(Case c) {
        long seed = 20260703;
        try (Arena arena = Arena.ofShared()) {
            Setup s = setup(c, arena);
            List<String> expectNotes = new ArrayList<>();
            byte[] expect = wholeTensor(c, s, seed, expectNotes);
            List<Backend> backends = nat == null ? List.of(jb) : List.of(jb, nat);
            for (Backend be : backends) {
                // the last: the whole tensor in one chunk, where a resumable combine starts from the last reduction pass's tiles
                for (long chunk : new long[] {1000, 531 * 3 + 17, 1 << 20}) {
                    List<String> notes = new ArrayList<>();
                    byte[] got = chunked(be.chunkOps().orElseThrow(), c, s, seed, chunk, notes);
                    same(expect, got, c.out(), be.name() + " chunks of " + chunk);
                    assertEquals(expectNotes, notes, "the chunked path logs the notes of the whole-tensor path");
                }
            }
            // arcee_fusion: the case must take θ₁ at some positions and keep θ₀ at others, or its threshold is untested
            if (c.method().equals("arcee_fusion") && c.in() == c.out() && Shape.of(c.dims()).numel() > 100) {
                byte[] base = s.base().data().toArray(ValueLayout.JAVA_BYTE);
                int es = c.out().byteSize();
                long kept = 0, n = expect.length / es;
                for (int i = 0; i < expect.length; i += es) if (java.util.Arrays.equals(expect, i, i + es, base, i, i + es)) kept++;
                assertTrue(kept > 0 && kept < n, "arcee_fusion keeps θ₀ at " + kept + " of " + n + " positions: the mask must be mixed");
            }
            // the random drops depend on the seed: a check that the cases exercise them
            if (c.method().startsWith("dare") && Shape.of(c.dims()).numel() > 100) {
                byte[] other = chunked(jb.chunkOps().orElseThrow(), c, s, seed + 1, 1000, new ArrayList<>());
                assertTrue(!java.util.Arrays.equals(expect, other), "another seed must draw another mask");
            }
        }
    }

    /**
     * arcee_fusion keeps the KL of at most so many rows from its first pass and recomputes the
     * others in every pass: with only 5 kept (of 23 rows, or 91 in the cube), the same bytes.
     */
    @org.junit.jupiter.api.Test
    void arceeFusionRecomputesTheRowsItDoesNotKeep() {
        long seed = 20260703;
        for (long[] dims : new long[][] {{23, 531}, {7, 13, 29}}) {
            Case c = new Case("arcee_fusion", m(), List.of(m()), dims, DType.F32, DType.F32, false);
            try (Arena arena = Arena.ofShared()) {
                Setup s = setup(c, arena);
                byte[] expect = wholeTensor(c, s, seed, new ArrayList<>());
                for (long chunk : new long[] {1000, 1 << 20}) {
                    ChunkProgram p = ((ArceeFusion) s.method()).program(new TensorSetup(Harness.TENSOR, Shape.of(dims), s.params(), s.baseIndex(), true, seed, n -> { }), 5);
                    same(expect, chunked(jb.chunkOps().orElseThrow(), c, s, chunk, p), c.out(), "5 rows kept, chunks of " + chunk);
                }
            }
        }
    }

    /** DELLA sums ‖τ‖₁ before its drop in the rescale pass, beside ‖τ̂‖₁: one reduction pass, then the combine — its inputs read twice. */
    @org.junit.jupiter.api.Test
    void dellaRunsOneReductionPass() {
        Case c = new Case("della", m(), List.of(m("weight", 0.7, "density", 0.4, "epsilon", 0.1), m("weight", 0.5, "density", 0.6)),
                new long[] {23, 531}, DType.BF16, DType.BF16, false);
        // 6 chunks of 4 rows: one reduction pass and the combine load each
        assertEquals(List.of(1, 12L), loads(c, 531 * 4));
    }

    /**
     * On a tensor of several chunks della's combine applies the rescale pass's keep bits instead of
     * ranking again: each model's elements go through laneRanks once (before the keep bits: twice).
     * chunkedGivesTheWholeTensorBytes checks that the bytes stay those of the whole-tensor path.
     */
    @org.junit.jupiter.api.Test
    void dellaRanksEachRowOnceOnSeveralChunks() {
        Case c = new Case("della", m(), List.of(m("weight", 0.7, "density", 0.4, "epsilon", 0.1), m("weight", 0.5, "density", 0.6)),
                new long[] {23, 531}, DType.BF16, DType.BF16, false);
        Shape shape = Shape.of(c.dims());
        ChunkOps ref = jb.chunkOps().orElseThrow();
        long[] ranked = {0};
        ChunkOps counting = (ChunkOps) java.lang.reflect.Proxy.newProxyInstance(ChunkOps.class.getClassLoader(), new Class<?>[] {ChunkOps.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("dellaDrop")) ranked[0] += ((Tile) args[0]).size();   // ranks, probabilities and drop in one op
                    try {
                        return method.invoke(ref, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        try (Arena arena = Arena.ofConfined()) {
            Setup s = setup(c, arena);
            ChunkProgram p = ((ChunkedMethod) s.method()).program(new TensorSetup(Harness.TENSOR, shape, s.params(), s.baseIndex(), true, 1, n -> { }));
            try (TilePool pool = new TilePool(); ChunkRunner r = new ChunkRunner(counting, p, s.base(), s.models(), shape, 531 * 4, pool)) {
                r.reduce();
                for (long k = 0; k < r.chunks(); k++) r.combine(k);
                assertEquals(6, r.chunks());
            }
        }
        assertEquals(2 * shape.numel(), ranked[0], "two models' elements, each ranked once");
    }

    /**
     * On a tensor of one chunk the combines of della and sce resume from the tiles the last reduction
     * pass left (della: τ̂ dropped in the rescale pass; sce: the selected τ of the squares pass;
     * arcee_fusion and ramplus_tl: their inputs, which no pass writes), so no
     * load follows the reductions; ties without rescale has no resumable combine and loads it again.
     * (chunkedGivesTheWholeTensorBytes checks every method's bytes on one chunk.)
     */
    @org.junit.jupiter.api.Test
    void oneChunkCombinesResumeWithoutLoadingAgain() {
        long[] dims = {23, 531};
        Case della = new Case("della", m(), List.of(m("weight", 0.7, "density", 0.4, "epsilon", 0.1), m("weight", 0.5, "density", 0.6)), dims, DType.BF16, DType.BF16, false);
        Case sce = new Case("sce", m("select_topk", 0.5), List.of(m(), m(), m()), dims, DType.BF16, DType.BF16, false);
        Case ties = new Case("ties", m(), List.of(m("weight", 0.7, "density", 0.3), m("weight", 0.5, "density", 0.55)), dims, DType.BF16, DType.BF16, false);
        assertEquals(List.of(1, 1L), loads(della, 1 << 20), "della: the rescale pass's one load");
        assertEquals(List.of(3, 3L), loads(sce, 1 << 20), "sce: variances, selection, squares");
        assertEquals(List.of(2, 3L), loads(ties, 1 << 20), "ties: magnitudes, selection, then the combine's own load");
        Case fusion = new Case("arcee_fusion", m(), List.of(m()), dims, DType.BF16, DType.BF16, false);
        assertEquals(List.of(2, 2L), loads(fusion, 1 << 20), "arcee_fusion: high bits, low bits, then the combine on the same tiles");
        Case ramPlus = new Case("ramplus_tl", m(), List.of(m(), m()), dims, DType.BF16, DType.BF16, false);
        assertEquals(List.of(1, 1L), loads(ramPlus, 1 << 20), "ramplus_tl: the counts, then the combine on the same tiles");
        assertEquals(List.of(1, 26L), loads(ramPlus, 1000), "ramplus_tl in 13 chunks: each loaded by the counts and again by the combine");
    }

    /** Reduction passes and chunk loads of a whole chunked merge of the case on the Java chunk ops. */
    private static List<Object> loads(Case c, long chunk) {
        Shape shape = Shape.of(c.dims());
        try (Arena arena = Arena.ofShared()) {
            Setup s = setup(c, arena);
            ChunkProgram p = ((ChunkedMethod) s.method()).program(new TensorSetup(Harness.TENSOR, shape, s.params(), s.baseIndex(), true, 1, n -> { }));
            try (TilePool pool = new TilePool(); ChunkRunner r = new ChunkRunner(jb.chunkOps().orElseThrow(), p, s.base(), s.models(), shape, chunk, pool)) {
                r.reduce();
                for (long k = 0; k < r.chunks(); k++) r.combine(k);
                return List.of(r.reductionPasses(), r.chunkLoads());
            }
        }
    }

    private static void same(byte[] expect, byte[] got, DType dt, String what) {
        if (java.util.Arrays.equals(expect, got)) return;
        int es = dt.byteSize();
        for (int i = 0; i < expect.length; i += es) {
            if (!java.util.Arrays.equals(expect, i, i + es, got, i, i + es)) {
                fail(what + ": element " + (i / es) + " is " + HexFormat.of().formatHex(got, i, i + es) + ", whole-tensor path gives "
                        + HexFormat.of().formatHex(expect, i, i + es));
            }
        }
    }
}
