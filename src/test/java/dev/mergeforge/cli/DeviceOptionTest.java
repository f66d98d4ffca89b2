package dev.mergeforge.cli;

import dev.mergeforge.model.cuda.CudaForward;
import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `calibrate --device` and `eval --device`: a bad value is a usage error; a GPU this machine cannot use is one line saying why. */
class DeviceOptionTest {
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

    @Test
    void evalOnCudaWithoutAGpuSaysWhyInOneLine(@TempDir Path dir) throws Exception {
        if (CudaForward.unavailableReason().isEmpty()) return;
        TinyLlama.write(dir, 1, 1);
        Path text = Files.writeString(dir.resolve("eval.txt"), "a b c\n");
        MergeFixtures.Run r = MergeFixtures.cli("eval", dir.toString(), "--text", text.toString(), "--device", "cuda");
        assertEquals(1, r.exit(), r.err());
        String msg = r.err().strip();
        assertFalse(msg.contains("\n"), "one line: " + msg);
        assertTrue(msg.contains("--device cuda is unavailable: ") && msg.contains("--device cpu"), msg);
        assertEquals(2, MergeFixtures.cli("eval", dir.toString(), "--text", text.toString(), "--device", "gpu").exit());
    }
}
