package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs without a GPU: the benchmark's every case on the kernel emulator at a tiny size (it only checks the driver runs). */
class CudaBenchSmokeTest {

    @Test
    void everyCaseRunsAndReportsBandwidth() {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (CudaBackend emu = new CudaBackend(new EmulatedDevice()); PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
            CudaBench.run(emu, 5000, 1, out);
        }
        List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
        assertTrue(lines.getFirst().startsWith("host emulator of kernels/*.cu, 5000 elements"), lines.getFirst());
        int from = lines.indexOf(lines.stream().filter(l -> l.startsWith("kernel ")).findFirst().orElseThrow()) + 1;
        int to = lines.indexOf(lines.stream().filter(l -> l.startsWith("end to end")).findFirst().orElseThrow());
        List<String> kernels = lines.subList(from, to).stream().filter(l -> l.matches("\\S+\\s+[0-9.]+\\s+[0-9.]+")).toList();
        assertEquals(18, kernels.size(), "one timing line per case:\n" + String.join("\n", lines));
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("sub + keepRankRange")), String.join("\n", lines));
    }
}
