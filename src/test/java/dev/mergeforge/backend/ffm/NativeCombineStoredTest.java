package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code combineStored} (the fused linear / task-arithmetic program, mo_combine_stored): the output
 * bytes against the Java backend running load, {@link Combination#run} and store on tiles, bit for
 * bit, for mixed input dtypes, every output dtype, odd sizes, both kernel variants and several
 * thread counts; and the values against a double-precision reference written here.
 */
class NativeCombineStoredTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One program shape: input dtypes, base dtype (null: no task vectors), output dtype, weights, scales. */
    private record Program(DType[] in, DType base, DType out, float[] w, float[] scales) {
        Combination combination() { return new Combination(w, base != null, scales); }
    }

    private static final List<Program> PROGRAMS = List.of(
            // linear of two bf16 models, normalised
            new Program(new DType[] {DType.BF16, DType.BF16}, null, DType.BF16, new float[] {1f, 1f}, new float[] {0.5f}),
            // task arithmetic of three mixed-dtype models over an f64 base, normalised and lambda, into f16
            new Program(new DType[] {DType.BF16, DType.F16, DType.F32}, DType.F64, DType.F16, new float[] {0.3f, -1.25f, 0.7f},
                    new float[] {1f / (0.3f + -1.25f + 0.7f), 0.85f}),
            // one f32 model, no scale, into f32 and f64
            new Program(new DType[] {DType.F32}, null, DType.F32, new float[] {0.1f}, new float[0]),
            new Program(new DType[] {DType.F16, DType.BF16}, DType.BF16, DType.F64, new float[] {2f, 0.5f}, new float[] {3f}));

    private static MemorySegment encode(Arena arena, DType d, float[] v) {
        MemorySegment s = arena.allocate((long) v.length * d.byteSize());
        for (int i = 0; i < v.length; i++) {
            switch (d) {
                case BF16 -> s.setAtIndex(S16, i, (short) (Float.floatToRawIntBits(v[i]) >>> 16)); // truncation: any bf16 pattern is an input
                case F16 -> s.setAtIndex(S16, i, Float.floatToFloat16(v[i]));
                case F32 -> s.setAtIndex(F32, i, v[i]);
                case F64 -> s.setAtIndex(F64, i, v[i] * 1.0000001); // a double not representable as float: load rounds
                default -> throw new IllegalArgumentException(d.toString());
            }
        }
        return s;
    }

    /** The stored value as a double, decoded independently of the library. */
    private static double decode(MemorySegment s, DType d, long i) {
        return switch (d) {
            case BF16 -> Float.intBitsToFloat((s.getAtIndex(S16, i) & 0xffff) << 16);
            case F16 -> Float.float16ToFloat(s.getAtIndex(S16, i));
            case F32 -> s.getAtIndex(F32, i);
            case F64 -> s.getAtIndex(F64, i);
            default -> throw new IllegalArgumentException(d.toString());
        };
    }

    private static byte[] viaTiles(Backend b, Program p, List<TensorView> xs, TensorView base, long n) {
        try (Arena arena = Arena.ofShared()) {
            List<Tile> tiles = new ArrayList<>();
            for (TensorView v : xs) {
                Tile t = new Tile(arena.allocate(n * 4), Shape.of(n));
                b.load(v, t);
                tiles.add(t);
            }
            Tile bt = null;
            if (base != null) {
                bt = new Tile(arena.allocate(n * 4), Shape.of(n));
                b.load(base, bt);
            }
            Tile out = new Tile(arena.allocate(n * 4), Shape.of(n));
            p.combination().run(b, tiles, bt, out);
            MemorySegment dst = arena.allocate(n * p.out().byteSize());
            b.store(out, p.out(), dst);
            return dst.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void sameBytesAsTheOpsOnTilesAndCloseToDouble(Case c) {
        for (int pi = 0; pi < PROGRAMS.size(); pi++) {
            Program p = PROGRAMS.get(pi);
            long n = c.n();
            try (Arena arena = Arena.ofShared()) {
                List<TensorView> xs = new ArrayList<>();
                for (int j = 0; j < p.in().length; j++) {
                    float[] v = NativeFixtures.random(100L * pi + j, n);
                    xs.add(new TensorView("m" + j, p.in()[j], Shape.of(n), encode(arena, p.in()[j], v), "test"));
                }
                TensorView base = p.base() == null ? null
                        : new TensorView("base", p.base(), Shape.of(n), encode(arena, p.base(), NativeFixtures.random(77 + pi, n)), "test");
                MemorySegment dst = arena.allocate(n * p.out().byteSize());
                assertTrue(nat(c).fusesCombination(p.combination(), xs, base, p.out()));
                assertFalse(nat(c).combineStored(p.combination(), xs, base, 0, p.out(), dst), "finite inputs reported as non-finite");
                String what = "program " + pi + " " + c;
                assertArrayEquals(viaTiles(java(), p, xs, base, n), dst.toArray(ValueLayout.JAVA_BYTE), what + ": bytes differ from the tile path");

                // reference: every float32 step as double arithmetic rounded to float, then the output dtype's half ulp
                for (long i = 0; i < n; i++) {
                    double b = base == null ? 0 : (float) decode(base.data(), p.base(), i);
                    float acc = 0;
                    for (int j = 0; j < xs.size(); j++) {
                        float x = (float) decode(xs.get(j).data(), p.in()[j], i);
                        float t = base == null ? x : (float) ((double) x - b);
                        float prod = (float) ((double) p.w()[j] * t);
                        acc = j == 0 ? prod : (float) ((double) acc + prod);
                    }
                    for (float s : p.scales()) acc = (float) ((double) s * acc);
                    if (base != null) acc = (float) (b + acc);
                    double got = decode(dst, p.out(), i);
                    double ulp = switch (p.out()) {
                        case BF16 -> Math.abs(acc) * 0x1p-8 + 0x1p-133;
                        case F16 -> Math.abs(acc) * 0x1p-11 + 0x1p-25;
                        default -> 0;
                    };
                    if (p.out() == DType.F16 && Math.abs(acc) >= 65520) {
                        assertTrue(Double.isInfinite(got), what + " element " + i);
                    } else if (Math.abs(got - acc) > ulp) {
                        assertEquals(acc, got, ulp, what + " element " + i);
                    }
                }
            }
        }
    }

    @Test
    void nanPayloadsAndInfinitiesFollowTheTilePath() {
        long n = 4096 + 5;
        SplittableRandom r = new SplittableRandom(5);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment a = arena.allocate(n * 2), b = arena.allocate(n * 2);
            for (long i = 0; i < n; i++) {
                a.setAtIndex(S16, i, (short) (r.nextInt(8) == 0 ? 0x7c00 | r.nextInt(0x400) : r.nextInt(0x7c00)));
                // finite, or an infinity: which of two NaN operands x86 propagates depends on operand order, which
                // neither javac/C2 nor gcc pins, so NaNs come from one input only (inputs are checked finite by default)
                b.setAtIndex(S16, i, (short) ((r.nextInt(16) == 0 ? 0x7c00 : r.nextInt(0x7c00)) | (r.nextBoolean() ? 0x8000 : 0)));
            }
            List<TensorView> xs = List.of(new TensorView("a", DType.F16, Shape.of(n), a, "t"), new TensorView("b", DType.F16, Shape.of(n), b, "t"));
            for (DType out : List.of(DType.F16, DType.BF16)) {
                Program p = new Program(new DType[] {DType.F16, DType.F16}, null, out, new float[] {1f, 1f}, new float[] {0.5f});
                MemorySegment dst = arena.allocate(n * out.byteSize());
                assertTrue(NativeFixtures.nat(new Case(n, 2, true)).combineStored(p.combination(), xs, null, 0, out, dst), "the NaNs and infinities are reported");
                assertArrayEquals(viaTiles(java(), p, xs, null, n), dst.toArray(ValueLayout.JAVA_BYTE), "NaN/Inf payloads into " + out);
            }
        }
    }

    /** A finite float64 beyond the float range reads as infinity: reported, for the caller to confirm on the stored bits. */
    @Test
    void aFloat64BeyondTheFloatRangeIsReportedToo() {
        long n = 70_000;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment d = arena.allocate(n * 8);
            d.setAtIndex(F64, n - 3, 1e300);
            TensorView v = new TensorView("d", DType.F64, Shape.of(n), d, "t");
            Combination c = new Combination(new float[] {1f}, false, new float[0]);
            assertTrue(nat(new Case(n, 2, true)).combineStored(c, List.of(v), null, 0, DType.F32, arena.allocate(n * 4)));
            assertEquals(-1, nat(new Case(n, 2, true)).firstNonFinite(v), "the stored bits are finite");
            d.setAtIndex(F64, n - 3, 0.0);
            assertFalse(nat(new Case(n, 2, false)).combineStored(c, List.of(v), null, 0, DType.F32, arena.allocate(n * 4)));
        }
    }

    @Test
    void declinesWhatItCannotFuse() {
        long n = 8;
        try (Arena arena = Arena.ofShared()) {
            TensorView f = new TensorView("f", DType.F32, Shape.of(n), arena.allocate(n * 4), "t");
            TensorView i = new TensorView("i", DType.I32, Shape.of(n), arena.allocate(n * 4), "t");
            MemorySegment dst = arena.allocate(n * 4);
            Backend nb = nat(new Case(n, 1, true));
            Combination plain = new Combination(new float[] {1f}, false, new float[0]);
            assertFalse(nb.fusesCombination(plain, List.of(i), null, DType.F32), "integer input");
            assertFalse(nb.fusesCombination(new Combination(new float[] {1f}, true, new float[0]), List.of(f), null, DType.F32), "task vectors without a base");
            assertFalse(nb.fusesCombination(new Combination(new float[] {1f, 2f}, false, new float[0]), List.of(f), null, DType.F32), "weights and models differ");
            assertThrows(IllegalArgumentException.class, () -> nb.combineStored(plain, List.of(i), null, 0, DType.F32, dst));
            assertFalse(java().fusesCombination(plain, List.of(f), null, DType.F32), "the Java reference never fuses");
            assertThrows(UnsupportedOperationException.class, () -> java().combineStored(plain, List.of(f), null, 0, DType.F32, dst));
        }
    }

    /** The ops on tiles of the given shape (the relaxation reads the shape's columns), stored as out. */
    private static byte[] viaShapedTiles(Backend b, Combination c, DType out, List<TensorView> xs, TensorView base, Shape shape) {
        long n = shape.numel();
        try (Arena arena = Arena.ofShared()) {
            List<Tile> tiles = new ArrayList<>();
            for (TensorView v : xs) {
                Tile t = new Tile(arena.allocate(n * 4), shape);
                b.load(v, t);
                tiles.add(t);
            }
            Tile bt = new Tile(arena.allocate(n * 4), shape);
            b.load(base, bt);
            Tile o = new Tile(arena.allocate(n * 4), shape);
            c.run(b, tiles, bt, o);
            MemorySegment dst = arena.allocate(n * out.byteSize());
            b.store(o, out, dst);
            return dst.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /**
     * With AIM's relaxation as the last step: the bytes of the ops on tiles (Backend.relax included)
     * along every axis, with importance exactly 0 and 1 among random ones (f == 1, and with omega 0
     * also f == 0), for linear (the base read only for the relaxation) and task arithmetic; and the
     * tensor computed in pieces at their offsets equals the whole.
     */
    @Test
    void theRelaxationAsLastStepGivesTheTileBytesWholeAndInPieces() {
        long rows = 37, cols = 129, n = rows * cols;
        Shape shape = Shape.of(rows, cols);
        SplittableRandom r = new SplittableRandom(12);
        try (Arena arena = Arena.ofShared()) {
            List<TensorView> xs = new ArrayList<>();
            for (int j = 0; j < 2; j++) xs.add(new TensorView("m" + j, DType.BF16, shape, encode(arena, DType.BF16, NativeFixtures.random(40 + j, n)), "t"));
            TensorView base = new TensorView("base", DType.BF16, shape, encode(arena, DType.BF16, NativeFixtures.random(49, n)), "t");
            for (dev.mergeforge.backend.Backend.Axis axis : dev.mergeforge.backend.Backend.Axis.values()) {
                float[] imp = new float[Math.toIntExact(axis.channels(n, cols))];
                for (int k = 0; k < imp.length; k++) imp[k] = (float) r.nextDouble();
                imp[0] = 0f;
                imp[1] = 1f;
                for (float omega : new float[] {0.4f, 0f}) {
                    for (boolean tv : new boolean[] {false, true}) {
                        Combination c = new Combination(new float[] {0.7f, 0.6f}, tv, new float[] {0.9f},
                                new Combination.Relax(imp, omega, axis, cols));
                        String what = axis + " omega=" + omega + (tv ? " task vectors" : " linear");
                        byte[] want = viaShapedTiles(java(), c, DType.BF16, xs, base, shape);
                        for (boolean avx2 : new boolean[] {true, false}) {
                            NativeBackend nb = nat(new Case(n, 2, avx2));
                            assertTrue(nb.fusesCombination(c, xs, base, DType.BF16));
                            MemorySegment whole = arena.allocate(n * 2);
                            nb.combineStored(c, xs, base, 0, DType.BF16, whole);
                            assertArrayEquals(want, whole.toArray(ValueLayout.JAVA_BYTE), what + " whole");
                            MemorySegment pieces = arena.allocate(n * 2);
                            long[] cuts = {0, 100, 1000, 1001, n};
                            for (int q = 0; q + 1 < cuts.length; q++) {
                                long from = cuts[q], count = cuts[q + 1] - cuts[q];
                                List<TensorView> part = xs.stream().map(v -> piece(v, from, count)).toList();
                                nb.combineStored(c, part, piece(base, from, count), from, DType.BF16, pieces.asSlice(from * 2, count * 2));
                            }
                            assertArrayEquals(want, pieces.toArray(ValueLayout.JAVA_BYTE), what + " in pieces");
                        }
                    }
                }
            }
            // a piece whose channels the importance does not cover is refused
            Combination short_ = new Combination(new float[] {1f, 1f}, false, new float[0],
                    new Combination.Relax(new float[] {1f, 1f}, 0.5f, dev.mergeforge.backend.Backend.Axis.ELEMENTS, cols));
            assertThrows(IllegalArgumentException.class, () -> nat(new Case(n, 1, true)).combineStored(short_, xs, base, 0, DType.BF16, arena.allocate(n * 2)));
        }
    }

    private static TensorView piece(TensorView v, long from, long count) {
        long b = v.dtype().byteSize();
        return new TensorView(v.name(), v.dtype(), Shape.of(count), v.data().asSlice(from * b, count * b), v.source());
    }
}
