package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The Java-driven emulated tests under ThreadSanitizer: the emulator is built with
 * -fsanitize=thread and loaded into a child JVM that has libtsan preloaded, which runs
 * {@link TsanConformanceRun} (the CUDA backend's conformance suite at one size, through CudaBackend,
 * DeviceOps and the real kernels, plus calib.cu's tiled kernels) with the JUnit console launcher.
 * Every emulated thread of a cooperating kernel is a TSan fiber (kernels/host/emu_runtime.h), so a
 * race on global memory between threads of a block — which the emulator's own checks (shared memory
 * only) cannot see — fails the run. A planted one must ({@link #NEIGHBOUR_REWRITE}).
 *
 * <p>The JVM itself is not instrumented; the interceptors are switched off for calls from its
 * libraries (so its own locking is invisible and never reported), and races whose stack runs
 * through the exit handlers are suppressed (the emulator's globals are destroyed by the
 * thread that ends the JVM, ordered after the launches by a join TSan cannot see). Skipped, with
 * the reason, where g++ cannot build or run -fsanitize=thread programs or the JUnit console
 * launcher is not in the Maven cache.
 */
class CudaEmulatedTsanTest {
    static final Path OUT = Path.of("target", "test-native", "tsan");
    static final int LIMIT_S = 300;

    /**
     * A global-memory race with harmless values: keepRankRange's mask kernel with each thread also
     * rewriting its neighbour's element (the value it reads, so the results stay right and only
     * ThreadSanitizer can tell; volatile, so that g++ keeps the self-assignment). It runs after
     * warp ops and barriers, in the fourth launch of a keepRankRange, on TSan fibers earlier blocks
     * already used: the emulator once left those fibers ignoring every access after their first
     * block (emu_runtime.h, fiberQuiet), and this race went unreported.
     */
    static final CudaEmulatorMutationTest.Mutant NEIGHBOUR_REWRITE = new CudaEmulatorMutationTest.Mutant(
            "each thread also rewrites its neighbour's element", "select.cu",
            "if (!keep) x[i] = 0.0f;",
            "if (!keep) x[i] = 0.0f;\n            if (i + 1 < n) ((volatile float*) x)[i + 1] = ((volatile float*) x)[i + 1];");

    record Run(int exit, String output) { }

    @Test
    void javaDrivenEmulatedTestsRunCleanAndAPlantedGlobalRaceIsReported() throws Exception {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        String why = CudaEmulatorSelfTest.tsanUnavailable();
        if (why != null) System.out.println("CudaEmulatedTsanTest: skipped: " + why);
        Assumptions.assumeTrue(why == null, () -> "ThreadSanitizer run skipped: " + why);
        Path console = consoleLauncher();
        Assumptions.assumeTrue(Files.isRegularFile(console), () -> "the JUnit console launcher is not in the Maven cache (" + console
                + "): make gpu-bundle fetches it once");
        String libtsan = new String(new ProcessBuilder("g++", "-print-file-name=libtsan.so").start().getInputStream().readAllBytes()).trim();
        Files.createDirectories(OUT);
        Path supp = OUT.resolve("jvm.supp");
        Files.writeString(supp, """
                called_from_lib:libjvm.so
                called_from_lib:libjava.so
                called_from_lib:libnio.so
                called_from_lib:libzip.so
                called_from_lib:libjli.so
                race:cxa_at_exit_wrapper
                race:__run_exit_handlers
                """);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<Run> clean = pool.submit(() -> {
                Path lib = EmulatedDevice.build(CudaEmulatorMutationTest.copyKernels(OUT.resolve("plain"), null), OUT.resolve("plain").resolve("libmfemu.so"),
                        "-g", "-fsanitize=thread");
                return child(libtsan, supp, console, lib, "--select-class", TsanConformanceRun.class.getName());
            });
            Future<Run> planted = pool.submit(() -> {
                Path lib = EmulatedDevice.build(CudaEmulatorMutationTest.copyKernels(OUT.resolve("race"), NEIGHBOUR_REWRITE),
                        OUT.resolve("race").resolve("libmfemu.so"), "-g", "-fsanitize=thread", CudaEmulatorMutationTest.SELECT_ONLY);
                return child(libtsan, supp, console, lib, "--select-method", TsanConformanceRun.class.getName() + "#keepRankRangeWithTies");
            });
            Run c = clean.get(), p = planted.get();
            assertEquals(0, c.exit(), () -> "the emulated tests under ThreadSanitizer failed (exit 66: a race report):\n" + c.output());
            assertFalse(c.output().contains("ThreadSanitizer"), c.output());
            Matcher ok = Pattern.compile("(\\d+) tests successful").matcher(c.output());
            assertTrue(ok.find() && Integer.parseInt(ok.group(1)) >= 9, () -> "expected the 9 tests of TsanConformanceRun to pass:\n" + c.output());
            assertTrue(c.output().contains("0 tests failed"), c.output());
            assertEquals(66, p.exit(), () -> "ThreadSanitizer missed emulated threads rewriting each other's global element:\n" + p.output());
            assertTrue(p.output().contains("WARNING: ThreadSanitizer: data race") && p.output().contains("mf_keep_rank_mask"), p.output());
        } finally {
            pool.shutdownNow();
        }
    }

    /** junit-platform-console-standalone of the platform the tests run on (jupiter 5.X.Y: platform 1.X.Y), in ~/.m2. */
    static Path consoleLauncher() {
        String v = org.junit.jupiter.api.Test.class.getPackage().getImplementationVersion();
        String platform = v == null ? "?" : v.replaceFirst("^5\\.", "1.");
        return Path.of(System.getProperty("user.home"), ".m2", "repository", "org", "junit", "platform", "junit-platform-console-standalone",
                platform, "junit-platform-console-standalone-" + platform + ".jar");
    }

    /** The console launcher in a JVM with libtsan preloaded and the emulator library lib; output in a file. */
    static Run child(String libtsan, Path supp, Path console, Path lib, String... select) throws IOException, InterruptedException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx1g", "-XX:TieredStopAtLevel=1",
                "-Dmergeforge.emu.lib=" + lib.toAbsolutePath(), "-Dmergeforge.emu.seed=" + EmulatedDevice.SEED,
                "-jar", console.toString(), "execute", "--disable-banner", "--details=summary", "--class-path", cp));
        cmd.addAll(List.of(select));
        Path log = lib.resolveSibling("child.log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("LD_PRELOAD", libtsan);
        pb.environment().put("TSAN_OPTIONS", "halt_on_error=1 exitcode=66 report_signal_unsafe=0 suppressions=" + supp.toAbsolutePath());
        Process p = pb.start();
        if (!p.waitFor(LIMIT_S, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("the child JVM under ThreadSanitizer ran over " + LIMIT_S + " s: " + String.join(" ", cmd) + "\n" + Files.readString(log));
        }
        return new Run(p.exitValue(), Files.readString(log));
    }
}
