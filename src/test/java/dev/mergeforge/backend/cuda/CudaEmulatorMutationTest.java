package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
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
 * textual edit, are built into their own emulator and must each FAIL the emulated keepRankRange
 * check (the select.cu kernels through the real CudaBackend and DeviceRankSelect, against the Java
 * backend bit for bit), while the unmutated copy passes the same check. An edit whose anchor text
 * is not found exactly once fails the test, so a change to the kernels cannot turn a mutant into
 * a silent pass: update the anchor with the kernel.
 */
class CudaEmulatorMutationTest {
    /** A planted bug: in {@code file}, {@code anchor} (exactly once) becomes {@code replacement}. */
    record Mutant(String name, String file, String anchor, String replacement) { }

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
                    "__ballot_sync(0xffffffffu, eu)", "__ballot_sync(0x0000ffffu, eu)"));

    /** Every mutant is in select.cu: build only its kernels (a third faster). */
    static final String SELECT_ONLY = "-DMFEMU_SELECT_ONLY";

    @Test
    void everyPlantedBugFailsTheEmulatedTestsAndTheUnmutatedKernelsPass() throws Exception {
        Optional<String> why = EmulatedDevice.unavailableReason();
        Assumptions.assumeTrue(why.isEmpty(), () -> why.orElse(""));
        Path root = Path.of("target", "test-native", "mutants");
        Map<String, Future<Path>> libs = new LinkedHashMap<>();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            libs.put("unmutated", pool.submit(() -> EmulatedDevice.build(copyKernels(root.resolve("unmutated"), null),
                    root.resolve("unmutated").resolve("libmfemu.so"), SELECT_ONLY)));
            for (int i = 0; i < MUTANTS.size(); i++) {
                Mutant m = MUTANTS.get(i);
                Path dir = root.resolve("m" + i);
                Path kernels = copyKernels(dir, m);   // anchors are checked here, before any build
                libs.put(m.name(), pool.submit(() -> EmulatedDevice.build(kernels, dir.resolve("libmfemu.so"), SELECT_ONLY)));
            }
            Optional<String> control = selectFailure(libs.get("unmutated").get());
            assertTrue(control.isEmpty(), () -> "the unmutated kernels fail the mutation harness: " + control.get());
            List<String> survivors = new ArrayList<>();
            for (Mutant m : MUTANTS) {
                Optional<String> f = selectFailure(libs.get(m.name()).get());
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
