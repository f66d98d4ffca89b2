package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.SplittableRandom;

import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * firstNonFinite (the merger's input check): the native scan against the Java reference and a plain
 * decode-and-test loop written here, for every float dtype, NaN or infinity at the first, last and
 * random positions (around the 64-element AVX2 step and the 65536-element task boundary), or none.
 */
class NativeNonFiniteTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A finite random pattern or (bad) a NaN/infinity pattern of the dtype. */
    private static void put(MemorySegment s, DType d, long i, SplittableRandom r, boolean bad) {
        switch (d) {
            case BF16 -> s.setAtIndex(S16, i, (short) (bad ? 0x7f80 | r.nextInt(0x80) | (r.nextInt(2) << 15) : r.nextInt(0xff00) % 0x7f80 | (r.nextInt(2) << 15)));
            case F16 -> s.setAtIndex(S16, i, (short) (bad ? 0x7c00 | r.nextInt(0x400) | (r.nextInt(2) << 15) : r.nextInt(0x7c00) | (r.nextInt(2) << 15)));
            case F32 -> s.setAtIndex(I32, i, bad ? 0x7f800000 | r.nextInt(0x800000) | (r.nextInt(2) << 31) : Float.floatToRawIntBits((float) r.nextGaussian() * 1e30f));
            case F64 -> s.setAtIndex(I64, i, bad ? 0x7ff0000000000000L | (r.nextLong() & 0x800fffffffffffffL) : Double.doubleToRawLongBits(r.nextGaussian() * 1e300));
            default -> throw new IllegalArgumentException(d.toString());
        }
    }

    private static boolean finite(MemorySegment s, DType d, long i) {
        return switch (d) {
            case BF16 -> Float.isFinite(Float.intBitsToFloat((s.getAtIndex(S16, i) & 0xffff) << 16));
            case F16 -> Float.isFinite(Float.float16ToFloat(s.getAtIndex(S16, i)));
            case F32 -> Float.isFinite(Float.intBitsToFloat(s.getAtIndex(I32, i)));
            case F64 -> Double.isFinite(Double.longBitsToDouble(s.getAtIndex(I64, i)));
            default -> throw new IllegalArgumentException(d.toString());
        };
    }

    /** One generated tensor: finite random values with NaN/Inf at {@code bad}, for one kernel variant. */
    private interface CaseBody { void check(TensorView v, Arena arena, boolean avx2, String what); }

    /** Every float dtype and size, bad values at the placements (and random ones), both kernel variants. */
    private static void forEachCase(long seed, long[] sizes, boolean extraPlacements, CaseBody body) {
        SplittableRandom r = new SplittableRandom(seed);
        for (DType d : List.of(DType.BF16, DType.F16, DType.F32, DType.F64)) {
            for (long n : sizes) {
                List<long[]> placements = new java.util.ArrayList<>(List.of(new long[0], new long[] {0}, new long[] {n - 1}, new long[] {r.nextLong(n)}));
                if (extraPlacements) {
                    placements.add(new long[] {n / 2, n - 1});
                    placements.add(new long[] {Math.min(n - 1, 65_536), Math.min(n - 1, 65_540)});
                }
                for (long[] bad : placements) {
                    for (boolean avx2 : new boolean[] {true, false}) {
                        try (Arena arena = Arena.ofShared()) {
                            MemorySegment s = arena.allocate(n * d.byteSize());
                            for (long i = 0; i < n; i++) put(s, d, i, r, false);
                            for (long i : bad) put(s, d, i, r, true);
                            String what = d + " n=" + n + " bad at " + java.util.Arrays.toString(bad) + (avx2 ? " avx2" : " portable");
                            body.check(new TensorView("t", d, Shape.of(n), s, "test"), arena, avx2, what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void nativeScanFindsTheSameFirstIndexAsTheReferences() {
        forEachCase(3, new long[] {1, 63, 64, 65, 129, 65_536, 65_600, 200_003}, true, (v, arena, avx2, what) -> {
            long n = v.numel(), expect = -1;
            for (long i = 0; i < n && expect < 0; i++) if (!finite(v.data(), v.dtype(), i)) expect = i;
            assertEquals(expect, java().firstNonFinite(v), what + " (java)");
            assertEquals(expect, nat(new Case(n, 2, avx2)).firstNonFinite(v), what + " (native)");
        });
    }

    /**
     * loadChecked: the tile holds load's bits exactly, and the flag says whether any loaded value is
     * NaN/Inf — for every dtype, bad values at the edges of tasks and SIMD steps, both kernel
     * variants; the native flag equals the Java reference's and a plain loop over the tile.
     */
    @Test
    void loadCheckedLoadsTheSameBitsAndFlagsNonFiniteValues() {
        forEachCase(9, new long[] {1, 65, 65_536, 131_075}, false, (v, arena, avx2, what) -> {
            long n = v.numel();
            dev.mergeforge.tensor.Tile plain = new dev.mergeforge.tensor.Tile(arena.allocate(n * 4), Shape.of(n));
            dev.mergeforge.tensor.Tile checked = new dev.mergeforge.tensor.Tile(arena.allocate(n * 4), Shape.of(n));
            java().load(v, plain);
            boolean expect = false;
            for (long i = 0; i < n; i++) expect |= !Float.isFinite(plain.get(i));
            assertEquals(expect, java().loadChecked(v, checked), what + " (java)");
            assertEquals(expect, nat(new Case(n, 2, avx2)).loadChecked(v, checked), what + " (native)");
            assertEquals(-1, plain.data().mismatch(checked.data()), what + ": loaded bits");
        });
    }
}
