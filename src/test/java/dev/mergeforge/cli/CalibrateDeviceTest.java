package dev.mergeforge.cli;

import dev.mergeforge.backend.cuda.CudaForward;
import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `calibrate --device`: a bad value is a usage error; a GPU this machine cannot use is one line saying why. */
class CalibrateDeviceTest {
    @Test
    void unknownDeviceIsAUsageError(@TempDir Path dir) {
        TinyLlama.write(dir, 1, 1);
        MergeFixtures.Run r = MergeFixtures.cli("calibrate", dir.toString(), "--device", "tpu", "--no-cache", "-o", dir.resolve("s.safetensors").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--device tpu: expected cpu, cuda or cuda:N"), r.err());
    }

    @Test
    void cudaWithoutAGpuSaysWhyInOneLineAndSuggestsCpu(@TempDir Path dir) {
        if (CudaForward.unavailableReason().isEmpty()) return; // a GPU machine: CudaForwardGpuTest covers the run
        TinyLlama.write(dir, 1, 1);
        Path out = dir.resolve("s.safetensors");
        MergeFixtures.Run r = MergeFixtures.cli("calibrate", dir.toString(), "--device", "cuda:0", "--no-cache", "-o", out.toString());
        assertEquals(1, r.exit(), r.err());
        String msg = r.err().strip();
        assertFalse(msg.contains("\n"), "one line: " + msg);
        assertTrue(msg.contains("--device cuda:0 is unavailable: ") && msg.contains("--device cpu"), msg);
        assertTrue(msg.contains(CudaForward.unavailableReason().get()), msg);
        assertFalse(Files.exists(out));
    }
}
