package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs without a GPU: the PTX that {@code make ptx} puts in target/classes/ptx defines every entry
 * the Java side launches, with the parameter types the launch passes, and obeys the numeric rules
 * (no fused multiply-add, no approximate division or reciprocal).
 */
class CudaPtxTest {
    static final Path PTX_DIR = Path.of("target", "classes", "ptx");

    @BeforeAll
    static void ptxBuilt() {
        if (Files.isDirectory(PTX_DIR)) return;
        boolean nvcc = System.getenv().getOrDefault("PATH", "").lines().flatMap(p -> List.of(p.split(":")).stream())
                .anyMatch(d -> Files.isExecutable(Path.of(d, "nvcc")));
        Assumptions.assumeTrue(nvcc, "nvcc is not installed, so the build has no PTX to check");
        fail(PTX_DIR + " is missing although nvcc is installed: run `make ptx` (make test does) before this test");
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
        for (String module : List.of(Kernel.values()).stream().map(k -> k.module).distinct().toList()) {
            Matcher m = banned.matcher(ptx(module));
            assertFalse(m.find(), module + ".ptx contains " + (m.hitEnd() ? "" : m.group()) + ": build with -fmad=false -prec-div=true and use __f*_rn intrinsics");
        }
        // the divisions that exist are IEEE round-to-nearest
        assertTrue(ptx("elementwise").contains("div.rn.f32"), "mf_div_scalar must use div.rn.f32");
        assertTrue(ptx("ties").contains("div.rn.f32"), "mf_disjoint_merge must use div.rn.f32");
    }

    @Test
    void ptxTargetsComputeCapability80WithIsa70() throws IOException {
        for (String module : List.of(Kernel.values()).stream().map(k -> k.module).distinct().toList()) {
            String text = ptx(module);
            assertTrue(text.contains(".target sm_80"), module + ".ptx is not built for compute_80");
            // stamped by make ptx so that drivers older than the build's nvcc load it (ptxas checked it)
            assertTrue(text.contains("\n.version 7.0\n"), module + ".ptx is not stamped PTX ISA 7.0: rebuild with make ptx");
        }
    }
}
