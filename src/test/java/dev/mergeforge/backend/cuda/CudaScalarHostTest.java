package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.ExpLog;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.tensor.Floats;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs without a GPU: the scalar helpers the kernels use (kernels/mf_common.cuh: bf16/f16
 * conversions, Philox; kernels/mf_explog.cuh: exp, log) are compiled as plain C with gcc and compared bit for bit with the Java
 * reference (Floats, Float.float16ToFloat/floatToFloat16, Philox, ExpLog) on every 16-bit pattern and a
 * dense sample of float32 patterns including every rounding tie.
 */
class CudaScalarHostTest {
    static Arena arena;
    static MethodHandle bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, philox, mfExp, mfLog;

    @BeforeAll
    static void build() throws IOException, InterruptedException {
        Path out = Path.of("target", "test-native");
        Files.createDirectories(out);
        Path lib = out.resolve("libmfhost.so").toAbsolutePath();
        Process p;
        try {
            p = new ProcessBuilder("gcc", "-std=c11", "-O2", "-shared", "-fPIC", "-ffp-contract=off",
                    "-o", lib.toString(), "kernels/host/mf_host_check.c").redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("gcc is not installed, so the kernels' scalar helpers cannot be built for the host: " + e.getMessage());
            return;
        }
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "gcc timed out");
        String log = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.exitValue(), "gcc failed on kernels/host/mf_host_check.c:\n" + log);
        arena = Arena.ofShared();
        SymbolLookup l = SymbolLookup.libraryLookup(lib, arena);
        Linker linker = Linker.nativeLinker();
        FunctionDescriptor arrays = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG);
        bf16ToF32 = linker.downcallHandle(l.find("mfh_bf16_to_f32").orElseThrow(), arrays);
        f16ToF32 = linker.downcallHandle(l.find("mfh_f16_to_f32").orElseThrow(), arrays);
        f32ToBf16 = linker.downcallHandle(l.find("mfh_f32_to_bf16").orElseThrow(), arrays);
        f32ToF16 = linker.downcallHandle(l.find("mfh_f32_to_f16").orElseThrow(), arrays);
        philox = linker.downcallHandle(l.find("mfh_philox").orElseThrow(), arrays);
        mfExp = linker.downcallHandle(l.find("mfh_exp").orElseThrow(), arrays);
        mfLog = linker.downcallHandle(l.find("mfh_log").orElseThrow(), arrays);
    }

    @AfterAll
    static void close() { if (arena != null) arena.close(); }

    static MemorySegment allHalves() {
        MemorySegment s = arena.allocate(JAVA_SHORT, 1 << 16);
        for (int i = 0; i < 1 << 16; i++) s.setAtIndex(JAVA_SHORT, i, (short) i);
        return s;
    }

    /** Float patterns: a stride over all 2^32, random ones, and every bf16 and f16 rounding tie ±1 ulp. */
    static int[] floatSample() {
        SplittableRandom r = new SplittableRandom(7);
        int[] v = new int[(1 << 20) + (1 << 18) + 6 * (1 << 16) + 18];
        int k = 0;
        for (long b = 0; b < 1L << 32; b += 4099) if (k < (1 << 20)) v[k++] = (int) b;
        for (int i = 0; i < 1 << 18; i++) v[k++] = r.nextInt();
        for (int h = 0; h < 1 << 16; h++) {
            // bf16 tie: h's float bits + half a bf16 ulp; f16 tie: halfway between half h and h+1
            int bfTie = (h << 16) | 0x8000;
            float lo = Float.float16ToFloat((short) h), hi = Float.float16ToFloat((short) (h + 1));
            int f16Tie = Float.floatToRawIntBits((float) (((double) lo + hi) / 2));
            for (int d = -1; d <= 1; d++) {
                v[k++] = bfTie + d;
                v[k++] = f16Tie + d;
            }
        }
        int[] special = {0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fbfffff, 0x7f802000, 0xff801fff,
                0x00000001, 0x807fffff, 0x477fefff, 0x477ff000, 0x33000000, 0x33000001, 0x387fc000, 0x7f7fffff};
        for (int s : special) v[k++] = s;
        return v;
    }

    @Test
    void bf16ToFloatAllPatterns() throws Throwable {
        MemorySegment in = allHalves(), out = arena.allocate(JAVA_FLOAT, 1 << 16);
        bf16ToF32.invokeExact(in, out, (long) (1 << 16));
        for (int i = 0; i < 1 << 16; i++) {
            int want = Float.floatToRawIntBits(Floats.bf16ToFloat((short) i));
            assertEquals(want, Float.floatToRawIntBits(out.getAtIndex(JAVA_FLOAT, i)), "bf16 0x" + Integer.toHexString(i));
        }
    }

    @Test
    void f16ToFloatAllPatterns() throws Throwable {
        MemorySegment in = allHalves(), out = arena.allocate(JAVA_FLOAT, 1 << 16);
        f16ToF32.invokeExact(in, out, (long) (1 << 16));
        for (int i = 0; i < 1 << 16; i++) {
            // NaNs included: the oracle is what Float.float16ToFloat really returns on this JVM
            int got = Float.floatToRawIntBits(out.getAtIndex(JAVA_FLOAT, i));
            assertEquals(Float.floatToRawIntBits(Floats.f16ToFloat((short) i)), got, "f16 0x" + Integer.toHexString(i));
        }
    }

    @Test
    void floatToBf16AndF16Sample() throws Throwable {
        int[] v = floatSample();
        MemorySegment in = arena.allocate(JAVA_INT, v.length);
        for (int i = 0; i < v.length; i++) in.setAtIndex(JAVA_INT, i, v[i]);
        MemorySegment bf = arena.allocate(JAVA_SHORT, v.length), hf = arena.allocate(JAVA_SHORT, v.length);
        f32ToBf16.invokeExact(in, bf, (long) v.length);
        f32ToF16.invokeExact(in, hf, (long) v.length);
        for (int i = 0; i < v.length; i++) {
            float f = Float.intBitsToFloat(v[i]);
            String at = "float bits 0x" + Integer.toHexString(v[i]);
            assertEquals(Floats.floatToBf16(f), bf.getAtIndex(JAVA_SHORT, i), "bf16 of " + at);
            // NaNs included: the oracle is what Float.floatToFloat16 really returns on this JVM
            assertEquals(Floats.floatToF16(f), hf.getAtIndex(JAVA_SHORT, i), "f16 of " + at + " (" + f + ")");
        }
    }

    @Test
    void philoxBlocksMatch() throws Throwable {
        int n = 20000;
        SplittableRandom r = new SplittableRandom(11);
        MemorySegment in = arena.allocate(JAVA_INT, 4L * n), out = arena.allocate(JAVA_INT, 4L * n);
        int[][] args = new int[n][4];
        for (int i = 0; i < n; i++) {
            // small counters (real tensors) and arbitrary ones
            args[i] = new int[] {i < n / 2 ? i : r.nextInt(), i < n / 2 ? 0 : r.nextInt(), r.nextInt(), r.nextInt()};
            for (int j = 0; j < 4; j++) in.setAtIndex(JAVA_INT, 4L * i + j, args[i][j]);
        }
        philox.invokeExact(in, out, (long) n);
        int[] want = new int[4];
        for (int i = 0; i < n; i++) {
            Philox.block(args[i][0], args[i][1], args[i][2], args[i][3], want);
            for (int j = 0; j < 4; j++) assertEquals(want[j], out.getAtIndex(JAVA_INT, 4L * i + j), "philox block " + i + " lane " + j);
        }
        // and the draw a kernel makes for element i: lane i & 3 of counter i >> 2 under the split key
        long key = 0x0123456789abcdefL;
        Philox.block(5, 0, (int) key, (int) (key >>> 32), want);
        assertEquals(Philox.draw(key, 5 * 4 + 2), want[2]);
    }

    /** kernels/mf_explog.cuh against ExpLog bit for bit: exp over [-750, 720] (past both ends), log over positive normals. */
    @Test
    void expAndLogAreExpLogsBits() throws Throwable {
        int n = 1 << 20;
        SplittableRandom r = new SplittableRandom(13);
        double[] xe = new double[n], xl = new double[n];
        for (int i = 0; i < n; i++) {
            // exp: the KL's arguments are x - max <= 0, most of them small; log: ratios near 1 and anywhere
            xe[i] = i % 4 == 0 ? -r.nextDouble() * 2 : -750 + r.nextDouble() * 1470;
            xl[i] = i % 4 == 0 ? 0.5 + r.nextDouble() * 1.5 : Double.longBitsToDouble(r.nextLong(0x0010000000000000L, 0x7ff0000000000000L));
        }
        double[] special = {0.0, -0.0, -708.0, -708.0000001, 709.0, 1e-300, -1e-300, Math.ulp(1.0), -Math.ulp(1.0), Double.NaN};
        System.arraycopy(special, 0, xe, 0, special.length);
        double[] specialLog = {1.0, Math.nextUp(1.0), Math.nextDown(1.0), Math.sqrt(0.5), Math.sqrt(2.0), Double.MIN_NORMAL, Double.MAX_VALUE, 2.0, 0.5};
        System.arraycopy(specialLog, 0, xl, 0, specialLog.length);
        MemorySegment in = arena.allocate(JAVA_DOUBLE, n), out = arena.allocate(JAVA_DOUBLE, n);
        MemorySegment.copy(xe, 0, in, JAVA_DOUBLE, 0, n);
        mfExp.invokeExact(in, out, (long) n);
        for (int i = 0; i < n; i++) {
            assertEquals(Double.doubleToRawLongBits(ExpLog.exp(xe[i])), Double.doubleToRawLongBits(out.getAtIndex(JAVA_DOUBLE, i)), "exp(" + xe[i] + ")");
        }
        MemorySegment.copy(xl, 0, in, JAVA_DOUBLE, 0, n);
        mfLog.invokeExact(in, out, (long) n);
        for (int i = 0; i < n; i++) {
            assertEquals(Double.doubleToRawLongBits(ExpLog.log(xl[i])), Double.doubleToRawLongBits(out.getAtIndex(JAVA_DOUBLE, i)), "log(" + xl[i] + ")");
        }
    }
}
