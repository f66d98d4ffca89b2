package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * kernels/host/emu_selftest.cpp: the emulator's own rules (a thread exiting before a barrier, threads
 * at different barriers, a ballot outside its mask, races that only a warp sync or only a barrier
 * orders, shared memory read before written or out of bounds, shuffles' lanes and a shuffle from
 * a lane that takes no part, masked ballots, a deadlock between a warp sync and a barrier)
 * and every cooperating kernel (select.cu) against serial references — built plainly, and built
 * with -fsanitize=thread so that ThreadSanitizer sees each emulated GPU thread as a thread and
 * checks global memory as well. Where the compiler cannot build or run ThreadSanitizer programs,
 * that test is skipped with the reason.
 */
class CudaEmulatorSelfTest {
    static final Path OUT = Path.of("target", "test-native");

    record Run(int exit, String output) { }

    static Run run(Map<String, String> env, String... cmd) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(240, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(String.join(" ", cmd) + " ran over 240 s");
        }
        return new Run(p.exitValue(), new String(out));
    }

    /** kernels/host/emu_selftest.cpp built into OUT/name (kept while kernels/, the flags and g++ are unchanged). */
    static Path build(String name, String... extra) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("g++", "-std=c++17", "-O1", "-ffp-contract=off", "-DMFEMU_SELECT_ONLY"));
        cmd.addAll(List.of(extra));
        return EmulatedDevice.gcc(cmd, Path.of("kernels", "host", "emu_selftest.cpp"), Path.of("kernels"), OUT.resolve(name));
    }

    @Test
    void emulatorRulesAndCooperatingKernels() throws Exception {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        Path exe = build("emu_selftest");
        Run r = run(Map.of(), exe.toString(), Long.toString(EmulatedDevice.SEED));
        assertEquals(0, r.exit(), () -> "emulator self-test failed (rerun with -Dmergeforge.emu.seed=" + EmulatedDevice.SEED + "):\n" + r.output());
        assertTrue(r.output().contains("PASSED: 0 failed"), r.output());
    }

    @Test
    void underThreadSanitizer() throws Exception {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        String why = tsanUnavailable();
        if (why != null) System.out.println("CudaEmulatorSelfTest: ThreadSanitizer run skipped: " + why);
        Assumptions.assumeTrue(why == null, () -> "ThreadSanitizer run skipped: " + why);
        Path exe = build("emu_selftest_tsan", "-g", "-fsanitize=thread");
        Map<String, String> env = Map.of("TSAN_OPTIONS", "halt_on_error=1 exitcode=66");
        Run r = run(env, exe.toString(), Long.toString(EmulatedDevice.SEED));
        assertEquals(0, r.exit(), () -> "emulated kernels under ThreadSanitizer failed (exit 66: a race report; rerun with "
                + "-Dmergeforge.emu.seed=" + EmulatedDevice.SEED + "):\n" + r.output());
        assertTrue(r.output().contains("PASSED: 0 failed") && !r.output().contains("ThreadSanitizer"), r.output());
        // and ThreadSanitizer is really watching the emulated threads: a race on global memory,
        // which the emulator's own checks cannot see, is reported
        Run race = run(env, exe.toString(), "--global-race");
        assertEquals(66, race.exit(), () -> "ThreadSanitizer missed two emulated threads writing one global word:\n" + race.output());
        assertTrue(race.output().contains("WARNING: ThreadSanitizer: data race") && race.output().contains("t_global_race"), race.output());
    }

    private static Optional<String> tsanVerdict;

    /** Why -fsanitize=thread programs cannot be built or run here, or null when they can (probed once per JVM). */
    static synchronized String tsanUnavailable() throws IOException, InterruptedException {
        if (tsanVerdict == null) tsanVerdict = Optional.ofNullable(probeTsan());
        return tsanVerdict.orElse(null);
    }

    private static String probeTsan() throws IOException, InterruptedException {
        Files.createDirectories(OUT);
        Path src = OUT.resolve("tsan_probe.cpp"), exe = OUT.resolve("tsan_probe").toAbsolutePath();
        Files.writeString(src, "#include <thread>\nint main() { int x = 0; std::thread t([&] { x = 1; }); t.join(); return x - 1; }\n");
        List<String> cmd = List.of("g++", "-std=c++17", "-fsanitize=thread", "-pthread", "-o", exe.toString(), src.toString());
        String key = ToolCache.key(cmd, List.of(src));
        if (!ToolCache.fresh(exe, key)) {
            ToolCache.forget(exe);
            Run c = run(Map.of(), cmd.toArray(String[]::new));
            if (c.exit() != 0) return "g++ cannot build with -fsanitize=thread: " + c.output().lines().findFirst().orElse("");
            ToolCache.remember(exe, key);
        }
        Run r = run(Map.of(), exe.toString());
        if (r.exit() != 0) return "-fsanitize=thread programs do not run here (exit " + r.exit() + "): " + r.output().lines().findFirst().orElse("");
        return null;
    }
}
