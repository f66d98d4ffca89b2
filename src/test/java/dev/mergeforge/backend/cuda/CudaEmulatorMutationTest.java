package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The emulator can fail: copies of the kernels, each with one bug a GPU would show planted by a
 * textual edit, are built into their own emulator and must each FAIL the emulated check of the
 * kernels they touch, while the unmutated copy passes the same checks: keepRankRange (the select.cu
 * kernels through the real CudaBackend and DeviceRankSelect, against the Java backend bit for bit),
 * the reductions (reduce.cu and its warp-shuffle tree in mf_stripes.cuh, against the Java backend bit
 * for bit) and the calibration kernels with shared-memory tiles (calib.cu's RMSNorm with its staged
 * row sums in mf_rows.cuh, and attention, against the CPU pass's float32 bits). An edit whose anchor text is not found exactly once fails the
 * test, so a change to the kernels cannot turn a mutant into a silent pass: update the anchor with
 * the kernel.
 */
class CudaEmulatorMutationTest {
    /** Which emulated check a mutant must fail (and which emulator build it needs). */
    enum Check { SELECT, REDUCE, CALIB }

    /** A planted bug: in {@code file}, {@code anchor} (exactly once) becomes {@code replacement}. */
    record Mutant(String name, String file, String anchor, String replacement, Check check) {
        Mutant(String name, String file, String anchor, String replacement) { this(name, file, anchor, replacement, Check.SELECT); }
    }

    static final List<Mutant> MUTANTS = List.of(
            // (a) the review's first planted bug: a race on a GPU
            new Mutant("histogram atomicAdds as plain +=", "select.cu",
                    "if (hi == prefix0) atomicAdd(&h[d], 1u);\n        if (ntargets > 1 && hi == prefix1) atomicAdd(&h[MF_HIST_BINS + d], 1u);",
                    "if (hi == prefix0) h[d] += 1u;\n        if (ntargets > 1 && hi == prefix1) h[MF_HIST_BINS + d] += 1u;"),
            // (b) the review's second: the ballot of the next row is no barrier for the other warps
            new Mutant("no __syncthreads before the next row rewrites wUp/wDn", "select.cu",
                    "        __syncthreads();  // wUp/wDn are rewritten by the next row\n", ""),
            // (c) the review's third, in both kernels that initialise shared memory
            new Mutant("no __syncthreads after zeroing the histogram", "select.cu",
                    "h[j] = 0;\n    __syncthreads();\n", "h[j] = 0;\n"),
            new Mutant("no __syncthreads after zeroing the tie counters", "select.cu",
                    "if (threadIdx.x == 0) { su = 0; sd = 0; }\n    __syncthreads();\n", "if (threadIdx.x == 0) { su = 0; sd = 0; }\n"),
            // (d) the scan over the per-warp ballot totals (our only warp-level scan): warps read
            // the totals of the warps before them without waiting for those warps to write them
            new Mutant("no __syncthreads between writing and scanning the per-warp totals", "select.cu",
                    "if (lane == 0) { wUp[warp] = __popc(bu); wDn[warp] = __popc(bd); }\n        __syncthreads();\n",
                    "if (lane == 0) { wUp[warp] = __popc(bu); wDn[warp] = __popc(bd); }\n"),
            // (e) an out-of-bounds shared-memory write (one past the histogram)
            new Mutant("histogram zeroing one past its end", "select.cu",
                    "j < 2 * MF_HIST_BINS; j += blockDim.x) h[j] = 0;", "j <= 2 * MF_HIST_BINS; j += blockDim.x) h[j] = 0;"),
            // a ballot whose mask leaves out half of the calling lanes
            new Mutant("__ballot_sync mask of half a warp", "select.cu",
                    "__ballot_sync(0xffffffffu, eu)", "__ballot_sync(0x0000ffffu, eu)"),
            // the staged row sums (RMSNorm): a thread consumes its row before the other threads
            // staged it, or a fast thread stages the next tile over one still being read
            new Mutant("no __syncthreads between staging a tile and summing its rows", "mf_rows.cuh",
                    "        __syncthreads();\n        // consume:", "        // consume:", Check.CALIB),
            new Mutant("no __syncthreads before the next tile is staged", "mf_rows.cuh",
                    "        __syncthreads();  // the next step overwrites the tile\n", "", Check.CALIB),
            // the reductions' warp tree (mf_stripes.cuh) walked from the widest shuffle down: the
            // same maths, another tree, other bits (the documented one pairs adjacent stripes first)
            new Mutant("reduction tree shuffles 16, 8, 4, 2, 1 instead of 1, 2, 4, 8, 16", "mf_stripes.cuh",
                    "for (int d = 1; d < 32; d *= 2)", "for (int d = 16; d >= 1; d /= 2)", Check.REDUCE),
            // the tiled attention: values loaded over keys other threads still read, a key tile
            // loaded over the previous tile's values/weights still in use
            new Mutant("no __syncthreads before the value tile replaces the key tile", "calib.cu",
                    "                    __syncthreads();  // every score of the tile read kvs: the values may replace the keys\n", "",
                    Check.CALIB),
            new Mutant("no __syncthreads before the next key tile is loaded", "calib.cu",
                    "                __syncthreads();  // qs and rowMax/rowInv written; the previous tile's kvs and sc consumed\n", "",
                    Check.CALIB),
            // the attention's per-row sum of exponentials must run over the keys in order, one
            // thread per row: summing a tile's keys from the last is the same maths, other bits
            new Mutant("attention sums a tile's exponentials last key first", "calib.cu",
                    "for (int j = 0; j < MF_ATT_KT && kt0 + j <= kHi; j++) {\n                            if (!mf_att_allowed(rt, pt, kt0 + j, window)) continue;\n                            float x = sc[t * MF_ATT_SPITCH + j];",
                    "for (int jj = 0; jj < MF_ATT_KT && kt0 + jj <= kHi; jj++) {\n                            int j = (int) min((long long) MF_ATT_KT - 1, kHi - kt0) - jj;\n                            if (!mf_att_allowed(rt, pt, kt0 + j, window)) continue;\n                            float x = sc[t * MF_ATT_SPITCH + j];",
                    Check.CALIB));

    /** The select.cu mutants build only its kernels (a third faster); the others the whole emulator. */
    static final String SELECT_ONLY = "-DMFEMU_SELECT_ONLY";

    static String[] buildArgs(Check c) { return c == Check.SELECT ? new String[] {SELECT_ONLY} : new String[0]; }

    @Test
    void everyPlantedBugFailsTheEmulatedTestsAndTheUnmutatedKernelsPass() throws Exception {
        Optional<String> why = EmulatedDevice.unavailableReason();
        Assumptions.assumeTrue(why.isEmpty(), () -> why.orElse(""));
        Path root = Path.of("target", "test-native", "mutants");
        Map<String, Future<Path>> libs = new LinkedHashMap<>();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Path plain = copyKernels(root.resolve("unmutated"), null);
            libs.put("unmutated", pool.submit(() -> EmulatedDevice.build(plain, root.resolve("unmutated").resolve("libmfemu.so"), SELECT_ONLY)));
            libs.put("unmutated, all kernels", pool.submit(() -> EmulatedDevice.build(plain, root.resolve("unmutated").resolve("libmfemu-all.so"))));
            for (int i = 0; i < MUTANTS.size(); i++) {
                Mutant m = MUTANTS.get(i);
                Path dir = root.resolve("m" + i);
                Path kernels = copyKernels(dir, m);   // anchors are checked here, before any build
                libs.put(m.name(), pool.submit(() -> EmulatedDevice.build(kernels, dir.resolve("libmfemu.so"), buildArgs(m.check()))));
            }
            for (Check c : Check.values()) {
                Optional<String> control = failure(c, libs.get(c == Check.SELECT ? "unmutated" : "unmutated, all kernels").get());
                assertTrue(control.isEmpty(), () -> "the unmutated kernels fail the " + c + " check of the mutation harness: " + control.get());
            }
            List<String> survivors = new ArrayList<>();
            for (Mutant m : MUTANTS) {
                Optional<String> f = failure(m.check(), libs.get(m.name()).get());
                System.out.println("mutant \"" + m.name() + "\": " + f.map(s -> "caught: " + s).orElse("NOT CAUGHT"));
                if (f.isEmpty()) survivors.add(m.name());
            }
            assertEquals(List.of(), survivors, "planted bugs the emulated tests do not catch");
        } finally {
            pool.shutdownNow();
        }
    }

    /** Copies kernels/ (the .cu, .cuh and host/ sources) to dir/kernels and applies m's edit, if any. */
    static Path copyKernels(Path dir, Mutant m) throws IOException {
        Path src = Path.of("kernels"), dst = dir.resolve("kernels");
        try (Stream<Path> files = Files.walk(src)) {
            for (Path p : files.toList()) {
                Path to = dst.resolve(src.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(to);
                else Files.copy(p, to, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
        if (m != null) {
            Path f = dst.resolve(m.file());
            String text = Files.readString(f);
            int at = text.indexOf(m.anchor());
            if (at < 0 || text.indexOf(m.anchor(), at + 1) >= 0) {
                fail("mutant \"" + m.name() + "\": its anchor is " + (at < 0 ? "not found" : "found more than once") + " in kernels/"
                        + m.file() + " (the kernel changed: update the anchor in CudaEmulatorMutationTest):\n" + m.anchor());
            }
            Files.writeString(f, text.substring(0, at) + m.replacement() + text.substring(at + m.anchor().length()));
        }
        return dst;
    }

    static Optional<String> failure(Check c, Path lib) {
        return switch (c) {
            case SELECT -> selectFailure(lib);
            case REDUCE -> reduceFailure(lib);
            case CALIB -> calibFailure(lib);
        };
    }

    /**
     * sumAbs, sumSquares and dot on the emulator built in lib against the Java backend, bit for
     * bit, on 2 canonical blocks and 5 elements (the short last block leaves stripes empty), and
     * sumAbs on ReductionOrderTest's input that tells the documented tree from the others. Empty
     * when all match; else the emulator's error or the first mismatch.
     */
    static Optional<String> reduceFailure(Path lib) {
        try (JavaBackend java = new JavaBackend(1)) {
            CudaBackend cuda = new CudaBackend(new EmulatedDevice(lib));
            try (cuda) {
                long n = 2 * 4096 + 5;
                float[] a = BackendConformanceSuite.data(n, 11), b = BackendConformanceSuite.data(n, 12);
                Tile ta = Tile.ofArray(a), tb = Tile.ofArray(b);
                double[][] pairs = {
                    {cuda.sumAbs(ta), java.sumAbs(ta)}, {cuda.sumSquares(ta), java.sumSquares(ta)}, {cuda.dot(ta, tb), java.dot(ta, tb)}};
                double pinned = cuda.sumAbs(Tile.ofArray(ReductionOrderTest.pinned()));
                if (pinned != ReductionOrderTest.EXPECTED) return Optional.of("sumAbs of the pinned input is " + pinned + ", expected " + ReductionOrderTest.EXPECTED);
                String[] names = {"sumAbs", "sumSquares", "dot"};
                for (int i = 0; i < 3; i++) {
                    if (Double.doubleToRawLongBits(pairs[i][0]) != Double.doubleToRawLongBits(pairs[i][1])) {
                        return Optional.of(names[i] + " of " + n + " is " + pairs[i][0] + ", expected " + pairs[i][1]);
                    }
                }
            }
            return Optional.empty();
        } catch (RuntimeException e) {
            return Optional.of(String.valueOf(e.getMessage()));
        }
    }

    /**
     * calib.cu's shared-memory kernels on the emulator built in lib against the CPU pass's float32
     * bits: RMSNorm over 67 rows of 70 on a grid of one block (two groups of 64 rows through one
     * block), attention over sequences of 5 and 20 tokens (query tiles straddling them, two key
     * tiles) on a grid of two blocks for its eight (tile, head) pairs. Empty when all match.
     */
    static Optional<String> calibFailure(Path lib) {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(5);
        try (EmulatedDevice dev = new EmulatedDevice(lib)) {
            DeviceBufferPool pool = new DeviceBufferPool(dev);
            List<DeviceBuffer> held = new ArrayList<>();
            java.util.function.Function<Object, DeviceBuffer> up = a -> {
                MemorySegment m = a instanceof float[] f ? MemorySegment.ofArray(f) : MemorySegment.ofArray((int[]) a);
                DeviceBuffer d = pool.borrow(m.byteSize(), "test");
                held.add(d);
                dev.upload(m, d);
                return d;
            };
            try {
                int rows = 67, width = 70;
                float[] x = gaussian(rnd, rows * width, 3), g = gaussian(rnd, width, 1);
                DeviceBuffer out = up.apply(new float[rows * width]);
                dev.launch(Kernel.RMSNORM, 1, Kernel.RMSNORM.block, up.apply(x), up.apply(g), 1e-6, width, out, (long) rows);
                float[] got = new float[rows * width];
                dev.download(out, MemorySegment.ofArray(got));
                for (int r = 0; r < rows; r++) {
                    double ss = 0;
                    for (int j = 0; j < width; j++) ss += (double) x[r * width + j] * x[r * width + j];
                    float inv = (float) (1.0 / Math.sqrt((float) (ss / width) + 1e-6));
                    for (int j = 0; j < width; j++) {
                        float want = g[j] * (x[r * width + j] * inv);
                        if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(got[r * width + j])) {
                            return Optional.of("rmsnorm row " + r + " column " + j + " is " + got[r * width + j] + ", expected " + want);
                        }
                    }
                }
                int heads = 4, kvHeads = 2, d = 5;
                int[] pos = new int[25];
                for (int r = 0; r < 25; r++) pos[r] = r < 5 ? r : r - 5;
                float[] q = gaussian(rnd, 25 * heads * d, 1.5), k = gaussian(rnd, 25 * kvHeads * d, 1.5), v = gaussian(rnd, 25 * kvHeads * d, 1);
                float scale = (float) (1.0 / Math.sqrt(d));
                DeviceBuffer att = up.apply(new float[25 * heads * d]);
                dev.launch(Kernel.ATTENTION, 2, Kernel.ATTENTION.block, up.apply(q), up.apply(k), up.apply(v), up.apply(pos), heads, kvHeads, d, 0, scale,
                        att, 25L);
                float[] ga = new float[25 * heads * d];
                dev.download(att, MemorySegment.ofArray(ga));
                float[] want = CalibKernelsTest.cpuAttention(q, k, v, pos, heads, kvHeads, d, 0, scale);
                for (int i = 0; i < want.length; i++) {
                    if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(ga[i])) {
                        return Optional.of("attention element " + i + " is " + ga[i] + ", expected " + want[i]);
                    }
                }
                return Optional.empty();
            } finally {
                held.forEach(pool::release);
                pool.close();
            }
        } catch (RuntimeException e) {
            return Optional.of(String.valueOf(e.getMessage()));
        }
    }

    private static float[] gaussian(java.util.SplittableRandom rnd, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (rnd.nextGaussian() * scale);
        return a;
    }

    /**
     * keepRankRange on the emulator built in lib against the Java backend: sizes that cut 4096-element
     * chunks unevenly, values with many tied magnitudes, ranges whose boundaries fall on ties. Empty
     * when every result matches bit for bit; else the emulator's error or the first mismatch.
     */
    static Optional<String> selectFailure(Path lib) {
        try (JavaBackend java = new JavaBackend(1)) {
            CudaBackend cuda = new CudaBackend(new EmulatedDevice(lib));
            try (cuda) {
                for (long n : new long[] {4097, 2 * 4096 + 5}) {
                    float[] v = BackendConformanceSuite.data(n, 7);
                    for (long[] r : new long[][] {{0, n / 5}, {n / 7, n / 2}, {n / 3, n + 1}}) {
                        Tile c = Tile.ofArray(v.clone()), j = Tile.ofArray(v.clone());
                        cuda.keepRankRange(c, r[0], r[1]);
                        java.keepRankRange(j, r[0], r[1]);
                        float[] got = c.toArray(), want = j.toArray();
                        for (int i = 0; i < n; i++) {
                            if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(want[i])) {
                                return Optional.of("keepRankRange[" + r[0] + "," + r[1] + ") of " + n + ": element " + i + " is "
                                        + got[i] + ", expected " + want[i]);
                            }
                        }
                    }
                }
            }
            return Optional.empty();
        } catch (RuntimeException e) {
            return Optional.of(String.valueOf(e.getMessage()));
        }
    }
}
