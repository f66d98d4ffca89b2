package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeFixtures.Case;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.random;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every native entry point with arguments that would make C read or write past its buffers: the
 * Java side refuses them before the call (and leaves the output untouched), or the arguments are
 * index ranges the C code clamps, where the result must equal the Java reference.
 */
class NativeBoundsTest {
    static final Case C = new Case(100, 2, true);

    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @Test
    void everyOpRefusesATooShortOperandAndLeavesTheOutputAlone() {
        Backend b = nat(C);
        try (Arena arena = Arena.ofShared()) {
            Tile a = tile(arena, random(1, 100)), s = tile(arena, random(2, 99)), out = tile(arena, random(3, 100));
            float[] outBefore = out.toArray();
            List<Runnable> calls = List.of(
                    () -> b.sub(a, s, out), () -> b.add(s, a, out), () -> b.sub(a, a, s), () -> b.scale(s, 2f, out),
                    () -> b.axpy(1f, s, out), () -> b.axpy(1f, a, s), () -> b.lerp(a, s, 0.5f, out), () -> b.lerp(a, a, 0.5f, s),
                    () -> b.weightedSum(List.of(a, s), new float[] {1, 1}, out), () -> b.weightedSum(List.of(a, a), new float[] {1, 1}, s),
                    () -> b.electSign(List.of(a, s), out), () -> b.electSign(List.of(a, a), s),
                    () -> b.disjointMerge(List.of(a, s), new float[] {1, 1}, out, true, out),
                    () -> b.disjointMerge(List.of(a, a), new float[] {1, 1}, s, true, out),
                    () -> b.dot(a, s));
            for (int i = 0; i < calls.size(); i++) {
                assertThrows(IllegalArgumentException.class, calls.get(i)::run, "call " + i);
                assertArrayEquals(outBefore, out.toArray(), "call " + i + " wrote its output before refusing");
            }
        }
    }

    @Test
    void loadAndStoreRefuseMismatchedBuffers() {
        Backend b = nat(C);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment bytes = arena.allocate(2 * 64);
            TensorView v = new TensorView("w", DType.BF16, Shape.of(64), bytes, "test");
            Tile small = tile(arena, new float[63]);
            assertThrows(IllegalArgumentException.class, () -> b.load(v, small));
            Tile src = tile(arena, random(4, 64));
            MemorySegment dst = arena.allocate(2 * 64 - 2);
            assertThrows(IllegalArgumentException.class, () -> b.store(src, DType.BF16, dst));
            assertThrows(IllegalArgumentException.class, () -> new TensorView("w", DType.BF16, Shape.of(65), bytes, "test"));
        }
    }

    @Test
    void rankRangesOutsideTheTensorAreClampedLikeTheJavaReference() {
        long n = 1000;
        long[][] ranges = {{-5, n + 10}, {n + 3, n + 9}, {7, 3}, {-20, -1}, {0, Long.MAX_VALUE}, {Long.MIN_VALUE, 10}, {990, 2000}};
        try (Arena arena = Arena.ofShared()) {
            for (long[] r : ranges) {
                float[] v = random(5, n);
                Tile x = tile(arena, v.clone()), y = tile(arena, v.clone());
                nat(C).keepRankRange(x, r[0], r[1]);
                java().keepRankRange(y, r[0], r[1]);
                assertBits(y.toArray(), x.toArray(), "keepRankRange [" + r[0] + ", " + r[1] + ")");
            }
        }
    }
}
