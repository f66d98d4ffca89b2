package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.params.provider.Arguments;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Shared set-up of the native conformance tests: cases, backends, random tiles, bit comparison. */
final class NativeFixtures {
    /** Odd sizes: tiny, around the SIMD width, the reduction block (4096) and the chunk (65536), and ~1M. */
    static final long[] SIZES = {1, 3, 7, 9, 31, 4095, 4097, 65_537, 1_000_003};

    private static final Map<Integer, NativeBackend> NATIVE = new HashMap<>();
    private static JavaBackend java;

    private NativeFixtures() {}

    /** Skips the calling test class when libmergeops is not built. */
    static void requireNative() {
        assumeTrue(NativeBackend.isAvailable(), () -> "native backend not available (" + NativeBackend.unavailableReason() + ")");
    }

    /** Puts the process back on the best kernels the CPU has (the level is process-wide). */
    static void restoreSimd() {
        if (NativeBackend.isAvailable()) NativeBackend.forceSimd(true);
    }

    /** One case: n elements, a thread count, the AVX2 or the portable kernels. */
    record Case(long n, int threads, boolean avx2) {
        @Override public String toString() { return "n=" + n + " threads=" + threads + (avx2 ? " avx2" : " portable"); }
    }

    /** Every size with 1 and 3 threads on AVX2 and 2 threads on the portable kernels. */
    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (long n : SIZES) {
            out.add(Arguments.of(new Case(n, 1, true)));
            out.add(Arguments.of(new Case(n, 3, true)));
            out.add(Arguments.of(new Case(n, 2, false)));
        }
        return out.stream();
    }

    /** The native backend for a case, with its kernel variant selected. */
    static synchronized NativeBackend nat(Case c) {
        NativeBackend.forceSimd(c.avx2());
        return NATIVE.computeIfAbsent(c.threads(), NativeBackend::new);
    }

    static synchronized JavaBackend java() {
        if (java == null) java = new JavaBackend(2);
        return java;
    }

    /** Gaussian values of mixed scales with exact zeros, negative zeros and repeated values sprinkled in. */
    static float[] random(long seed, long n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            int kind = r.nextInt(20);
            v[i] = switch (kind) {
                case 0 -> 0f;
                case 1 -> -0f;
                case 2 -> r.nextBoolean() ? 0.5f : -0.5f;
                case 3 -> (float) (r.nextGaussian() * 1e-39); // float subnormals
                default -> (float) (r.nextGaussian() * Math.pow(10, r.nextInt(7) - 3));
            };
        }
        return v;
    }

    /** Values drawn from a handful of magnitudes: many exact ties for rank selection. */
    static float[] ties(long seed, long n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] mags = {0f, 0.25f, 0.5f, 1f, 1.5f, 3f, 1e-3f};
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            float m = r.nextInt(3) == 0 ? (float) r.nextGaussian() : mags[r.nextInt(mags.length)];
            v[i] = r.nextBoolean() ? m : -m;
        }
        return v;
    }

    /** A native tile holding a copy of v, owned by arena. */
    static Tile tile(Arena arena, float[] v) { return tile(arena, Shape.of(v.length), v); }

    static Tile tile(Arena arena, Shape shape, float[] v) {
        MemorySegment s = arena.allocate(Math.max(4, 4L * v.length), 64);
        MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT, 0, v.length);
        return new Tile(s, shape);
    }

    /** Asserts two float arrays have identical bit patterns, naming the first difference. */
    static void assertBits(float[] expected, float[] actual, String what) {
        if (expected.length != actual.length) fail(what + ": length " + actual.length + " != " + expected.length);
        for (int i = 0; i < expected.length; i++) {
            int e = Float.floatToRawIntBits(expected[i]), a = Float.floatToRawIntBits(actual[i]);
            if (e != a) {
                fail(what + ": element " + i + " of " + expected.length + " is " + actual[i] + " (0x" + Integer.toHexString(a)
                        + "), expected " + expected[i] + " (0x" + Integer.toHexString(e) + ")");
            }
        }
    }

    /** Asserts two doubles are the same bits. */
    static void assertBits(double expected, double actual, String what) {
        if (Double.doubleToRawLongBits(expected) != Double.doubleToRawLongBits(actual)) {
            fail(what + ": " + actual + " != expected " + expected);
        }
    }
}
