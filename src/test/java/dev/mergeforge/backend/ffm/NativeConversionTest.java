package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
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
import java.util.SplittableRandom;

import static dev.mergeforge.backend.ffm.NativeFixtures.assertBits;
import static dev.mergeforge.backend.ffm.NativeFixtures.java;
import static dev.mergeforge.backend.ffm.NativeFixtures.nat;
import static dev.mergeforge.backend.ffm.NativeFixtures.tile;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * load and store for every float dtype: NativeBackend against JavaBackend on the raw bits (NaN
 * payloads, infinities, subnormals included), all 65536 halves exhaustively, a stride through all
 * 2^32 float patterns for f16/bf16 rounding, and round-to-nearest-even references computed in double.
 */
class NativeConversionTest {
    @BeforeAll static void native_() { NativeFixtures.requireNative(); }

    @AfterAll static void bestKernels() { NativeFixtures.restoreSimd(); }

    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Random raw bit patterns: every class of float (NaN, inf, subnormal, zero) occurs. */
    private static int[] randomBits(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] v = new int[n];
        for (int i = 0; i < n; i++) {
            int x = r.nextInt();
            v[i] = switch (r.nextInt(8)) {
                case 0 -> x & 0x807fffff;               // zero / subnormal
                case 1 -> x | 0x7f800000;               // inf / NaN
                case 2 -> (x & 0x80001fff) | 0x38000000 + (r.nextInt(40) << 23); // around the f16 range, low bits set
                default -> x;
            };
        }
        return v;
    }

    /** Loads raw bytes as dtype through a backend; returns the float32 tile contents. */
    private static float[] load(Backend b, DType dtype, MemorySegment raw, long n) {
        try (Arena arena = Arena.ofShared()) {
            Tile dst = tile(arena, new float[(int) n]);
            b.load(new TensorView("t", dtype, Shape.of(n), raw, "test"), dst);
            return dst.toArray();
        }
    }

    /** Stores floats as dtype through a backend; returns the raw bytes. */
    private static byte[] store(Backend b, DType dtype, float[] v) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment dst = arena.allocate(Math.max(1, (long) v.length * dtype.byteSize())).asSlice(0, (long) v.length * dtype.byteSize());
            b.store(tile(arena, v), dtype, dst);
            return dst.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @ParameterizedTest @MethodSource("dev.mergeforge.backend.ffm.NativeFixtures#cases")
    void loadAndStoreEveryDtype(Case c) {
        int n = (int) c.n();
        int[] bits = randomBits(51 + n, n);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = Float.intBitsToFloat(bits[i]);
        try (Arena arena = Arena.ofShared()) {
            for (DType dt : new DType[] {DType.F32, DType.F16, DType.BF16, DType.F64}) {
                MemorySegment raw = arena.allocate((long) n * dt.byteSize());
                SplittableRandom r = new SplittableRandom(n);
                for (long i = 0; i < raw.byteSize(); i++) raw.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt());
                assertBits(load(java(), dt, raw, n), load(nat(c), dt, raw, n), "load " + dt + " native vs java, " + c);
                assertArrayEquals(store(java(), dt, f), store(nat(c), dt, f), "store " + dt + " native vs java, " + c);
            }
        }
    }

    /** Reference half -> double: (-1)^s * m * 2^-24 for subnormals, (1 + m/1024) * 2^(e-15) otherwise. */
    private static double halfValue(int h) {
        int s = h >>> 15 & 1, e = h >>> 10 & 0x1f, m = h & 0x3ff;
        double mag = e == 0 ? m * 0x1p-24 : (1 + m / 1024.0) * Math.pow(2, e - 15);
        return s == 1 ? -mag : mag;
    }

    @Test
    void allHalvesLoadExactly() {
        int n = 1 << 16;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment raw = arena.allocate(2L * n);
            for (int h = 0; h < n; h++) raw.setAtIndex(S16, h, (short) h);
            for (boolean avx2 : new boolean[] {true, false}) {
                Case c = new Case(n, 2, avx2);
                float[] jv = load(java(), DType.F16, raw, n), nv = load(nat(c), DType.F16, raw, n);
                assertBits(jv, nv, "all halves native vs java, " + c);
                for (int h = 0; h < n; h++) {
                    boolean special = (h & 0x7c00) == 0x7c00;
                    if (special && (h & 0x3ff) != 0) assertTrue(Float.isNaN(nv[h]), "half 0x" + Integer.toHexString(h) + " is NaN");
                    else if (special) assertEquals((h & 0x8000) != 0 ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY, nv[h]);
                    else assertEquals(Double.doubleToRawLongBits(halfValue(h)), Double.doubleToRawLongBits(nv[h]), "half 0x" + Integer.toHexString(h));
                }
            }
        }
    }

    /** Reference float -> narrow bits, round to nearest even: mantissa bits p, exponent bias b, via double. */
    private static int narrowRef(float f, int p, int bias, int maxExp) {
        int expBits = Integer.bitCount(2 * bias + 1);
        int sign = Float.floatToRawIntBits(f) < 0 ? 1 << (p + expBits) : 0;
        double a = Math.abs((double) f);
        int inf = ((1 << expBits) - 1) << p;
        int e = Math.max(1 - bias, Math.getExponent(a));
        if (e > maxExp) return sign | inf;
        // the exponent field plus the significand rounded to p bits (rint: ties to even); a carry moves to the next binade
        long q = (long) Math.rint(a * Math.pow(2, p - e));
        return sign | (int) (((long) (e + bias - 1) << p) + q);
    }

    @Test
    void strideThroughAllFloatsRoundsLikeJava() {
        int stride = 4099, n = (int) ((1L << 32) / stride) + 1;
        float[] f = new float[n + 12];
        for (int i = 0; i < n; i++) f[i] = Float.intBitsToFloat((int) ((long) i * stride));
        float[] edges = {65504f, 65519.996f, 65520f, 0x1p-14f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1.002p-14f, -0x1.0p-26f, Float.MIN_VALUE, Float.MAX_VALUE, 3.0000002f};
        System.arraycopy(edges, 0, f, n, edges.length);
        for (boolean avx2 : new boolean[] {true, false}) {
            Case c = new Case(f.length, 2, avx2);
            byte[] jh = store(java(), DType.F16, f), nh = store(nat(c), DType.F16, f);
            byte[] jb = store(java(), DType.BF16, f), nb = store(nat(c), DType.BF16, f);
            assertArrayEquals(jh, nh, "f16 native vs java, " + c);
            assertArrayEquals(jb, nb, "bf16 native vs java, " + c);
            MemorySegment h = MemorySegment.ofArray(nh), b = MemorySegment.ofArray(nb);
            for (int i = 0; i < f.length; i++) {
                int hv = h.getAtIndex(S16, i) & 0xffff, bv = b.getAtIndex(S16, i) & 0xffff;
                if (Float.isNaN(f[i])) {
                    assertTrue((hv & 0x7c00) == 0x7c00 && (hv & 0x3ff) != 0, "f16 of NaN is NaN");
                    assertTrue((bv & 0x7f80) == 0x7f80 && (bv & 0x7f) != 0, "bf16 of NaN is NaN");
                    continue;
                }
                assertEquals(narrowRef(f[i], 10, 15, 15), hv, "f16 of " + f[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(f[i])) + ")");
                assertEquals(narrowRef(f[i], 7, 127, 127), bv, "bf16 of " + f[i]);
            }
        }
    }
}
