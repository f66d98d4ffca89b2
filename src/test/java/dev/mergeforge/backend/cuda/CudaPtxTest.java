package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs without a GPU: the PTX that {@code make ptx} builds (Maven copies it to target/classes/ptx and
 * the jar) defines every entry the Java side launches, with the parameter types the launch passes,
 * obeys the numeric rules (no fused multiply-add, no approximate division or reciprocal), is stamped
 * no newer than the PTX ISA the Makefile promises and assembles with ptxas for every GPU it claims.
 */
class CudaPtxTest {
    static final Path PTX_DIR = Path.of("target", "classes", "ptx");

    @BeforeAll
    static void ptxBuilt() {
        if (Files.isDirectory(PTX_DIR)) return;
        Assumptions.assumeTrue(onPath("nvcc").isPresent(), "nvcc is not installed, so the build has no PTX to check");
        fail(PTX_DIR + " is missing although nvcc is installed: run `make build` (make test does) before this test");
    }

    static String ptx(String module) throws IOException {
        Path p = PTX_DIR.resolve(module + ".ptx");
        assertTrue(Files.isRegularFile(p), p + " missing: kernels/" + module + ".cu was not compiled by make ptx");
        return Files.readString(p);
    }

    /** The parameter types (".u64", ".f32", ...) of entry {@code name}, or null if the PTX has no such entry. */
    static List<String> params(String ptx, String name) {
        Matcher m = Pattern.compile("\\.entry\\s+" + Pattern.quote(name) + "\\s*\\(([^)]*)\\)").matcher(ptx);
        if (!m.find()) return null;
        List<String> types = new ArrayList<>();
        Matcher p = Pattern.compile("\\.param\\s+(\\.[a-z0-9]+)").matcher(m.group(1));
        while (p.find()) types.add(p.group(1));
        return types;
    }

    @Test
    void everyLaunchedEntryExistsWithMatchingParameters() throws IOException {
        for (Kernel k : Kernel.values()) {
            List<String> types = params(ptx(k.module), k.entry);
            assertTrue(types != null, ".entry " + k.entry + " not found in " + k.module + ".ptx");
            assertEquals(k.signature.length(), types.size(), k.entry + " parameter count " + types);
            for (int i = 0; i < types.size(); i++) {
                String t = types.get(i);
                boolean ok = switch (k.signature.charAt(i)) {
                    case 'p', 'l' -> t.equals(".u64") || t.equals(".s64") || t.equals(".b64");
                    case 'i' -> t.equals(".u32") || t.equals(".s32") || t.equals(".b32");
                    case 'f' -> t.equals(".f32");
                    case 'd' -> t.equals(".f64");
                    default -> false;
                };
                assertTrue(ok, k.entry + " parameter " + i + " is " + t + " in the PTX but '" + k.signature.charAt(i) + "' in Kernel");
            }
        }
    }

    /**
     * Kernel.block is the kernel's __launch_bounds__: the PTX's {@code .maxntid N, 1, 1} after the
     * entry's parameters equals it, and a kernel declared block-size-free has no bound (so a
     * bound added to a kernel without telling the launcher, or the reverse, fails here).
     */
    @Test
    void everyDeclaredBlockSizeIsTheKernelsLaunchBounds() throws IOException {
        for (Kernel k : Kernel.values()) {
            Matcher m = Pattern.compile("\\.entry\\s+" + Pattern.quote(k.entry) + "\\s*\\([^)]*\\)\\s*(\\.maxntid\\s+(\\d+)\\s*,\\s*1\\s*,\\s*1)?")
                    .matcher(ptx(k.module));
            assertTrue(m.find(), ".entry " + k.entry + " not found in " + k.module + ".ptx");
            int bound = m.group(2) == null ? 0 : Integer.parseInt(m.group(2));
            assertEquals(k.block, bound, k.entry + ": Kernel." + k.name() + ".block is " + k.block + " but its __launch_bounds__ (.maxntid) is "
                    + (bound == 0 ? "absent" : bound));
        }
    }

    @Test
    void everyPtxEntryIsLaunchedByTheJavaSide() throws IOException {
        // a kernel nobody launches is dead code or a forgotten Kernel constant
        try (var files = Files.list(PTX_DIR)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".ptx")).toList()) {
                Matcher m = Pattern.compile("\\.entry\\s+(\\w+)").matcher(Files.readString(f));
                while (m.find()) {
                    String entry = m.group(1);
                    assertTrue(List.of(Kernel.values()).stream().anyMatch(k -> k.entry.equals(entry)), f + " defines " + entry + " which no Kernel launches");
                }
            }
        }
    }

    @Test
    void noFusedMultiplyAddOrApproximateDivision() throws IOException {
        Pattern banned = Pattern.compile("\\b(fma\\.rn\\.f(32|64)|fma\\.f(32|64)|mad\\.(rn\\.)?f(32|64)|div\\.(approx|full)\\.f32|rcp\\.approx|ex2\\.approx)\\b");
        for (String module : modules()) {
            Matcher m = banned.matcher(ptx(module));
            assertFalse(m.find(), module + ".ptx contains " + (m.hitEnd() ? "" : m.group()) + ": build with -fmad=false -prec-div=true and use __f*_rn intrinsics");
        }
        // the divisions that exist are IEEE round-to-nearest
        assertTrue(ptx("elementwise").contains("div.rn.f32"), "mf_div_scalar must use div.rn.f32");
        assertTrue(ptx("ties").contains("div.rn.f32"), "mf_disjoint_merge must use div.rn.f32");
    }

    /** The value of {@code NAME := value} in the Makefile: the one place the PTX's promises are written. */
    static String makeVariable(String name) throws IOException {
        Matcher m = Pattern.compile("(?m)^" + name + " := (.+)$").matcher(Files.readString(Path.of("Makefile")));
        assertTrue(m.find(), "Makefile defines no " + name);
        return m.group(1).strip();
    }

    static List<String> modules() {
        return List.of(Kernel.values()).stream().map(k -> k.module).distinct().toList();
    }

    @Test
    void ptxTargetsComputeCapability80WithAnIsaOldDriversLoad() throws IOException {
        String promised = makeVariable("PTX_ISA");
        for (String module : modules()) {
            String text = ptx(module);
            assertTrue(text.contains(".target sm_80"), module + ".ptx is not built for compute_80");
            Matcher v = Pattern.compile("(?m)^\\.version (\\d+)\\.(\\d+)$").matcher(text);
            assertTrue(v.find(), module + ".ptx has no .version line");
            String[] max = promised.split("\\.");
            int cmp = Integer.compare(Integer.parseInt(v.group(1)), Integer.parseInt(max[0]));
            if (cmp == 0) cmp = Integer.compare(Integer.parseInt(v.group(2)), Integer.parseInt(max[1]));
            // make ptx restamps newer ISAs so that drivers older than the build's nvcc load it
            assertTrue(cmp <= 0, module + ".ptx is PTX ISA " + v.group(1) + "." + v.group(2) + ", newer than the " + promised + " the Makefile promises: rebuild with make build");
        }
    }

    @Test
    void everyShippedPtxAssemblesForEveryClaimedGpu() throws Exception {
        Optional<Path> ptxas = onPath("ptxas");
        Assumptions.assumeTrue(ptxas.isPresent(), "ptxas (CUDA toolkit) is not installed: cannot assemble the PTX here");
        List<String> sms = List.of(makeVariable("PTX_SMS").split("\\s+"));
        assertTrue(sms.contains("80") && sms.contains("90"), "PTX_SMS must claim at least Ampere and Hopper: " + sms);
        Path verdicts = Files.createDirectories(Path.of("target", "test-native", "ptxas"));
        List<String> failures = modules().parallelStream().flatMap(module -> sms.stream().map(sm -> {
            try {
                // a PTX file ptxas accepted for this GPU, with this ptxas, is not assembled again (ToolCache)
                Path ptx = PTX_DIR.resolve(module + ".ptx"), ok = verdicts.resolve(module + ".sm_" + sm + ".ok");
                List<String> cmd = List.of(ptxas.get().toString(), "-arch=sm_" + sm, "-o", "/dev/null", ptx.toString());
                String key = ToolCache.key(cmd, List.of(ptx));
                if (ToolCache.fresh(ok, key)) return null;
                ToolCache.forget(ok);
                Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
                String out = new String(p.getInputStream().readAllBytes()).strip();
                if (p.waitFor() != 0) return module + ".ptx for sm_" + sm + ": " + out;
                Files.writeString(ok, "ptxas accepted " + ptx + " for sm_" + sm + "\n");
                ToolCache.remember(ok, key);
                return null;
            } catch (IOException | InterruptedException e) {
                return module + ".ptx for sm_" + sm + ": " + e;
            }
        })).filter(Objects::nonNull).toList();
        assertEquals(List.of(), failures, "ptxas rejects shipped PTX");
    }

    static Optional<Path> onPath(String tool) {
        return Stream.of(System.getenv().getOrDefault("PATH", "").split(":"))
                .map(d -> Path.of(d, tool)).filter(Files::isExecutable).findFirst();
    }
}
