package dev.mergeforge.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The I/O floor: positive finite rates from real reads and writes, no scratch file left, the slower side wins. */
class IoFloorTest {
    @Test
    void measuresBothSidesAndCleansUp(@TempDir Path dir) throws Exception {
        byte[] data = new byte[3 << 20];
        new Random(1).nextBytes(data);
        Path a = Files.write(dir.resolve("a.safetensors"), data), b = Files.write(dir.resolve("b.safetensors"), data);
        IoFloor io = IoFloor.measure(List.of(a, b), 5 << 20, dir);
        assertTrue(io.mappedReadBytesPerSecond() > 0 && Double.isFinite(io.mappedReadBytesPerSecond()), "mapped read " + io);
        assertTrue(io.preadBytesPerSecond() > 0 && Double.isFinite(io.preadBytesPerSecond()), "pread " + io);
        assertEquals(Math.max(io.mappedReadBytesPerSecond(), io.preadBytesPerSecond()), io.readBytesPerSecond(), "the faster read counts");
        assertTrue(io.writeBytesPerSecond() > 0 && Double.isFinite(io.writeBytesPerSecond()), "write " + io);
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(2, s.count(), "the scratch file is removed");
        }
        IoFloor fixed = new IoFloor(1e9, 2e9, 1e9);
        assertEquals(2.0, fixed.seconds(4_000_000_000L, 1_000_000_000L), 1e-12, "reading is the slower side");
        assertEquals(3.0, fixed.seconds(2_000_000_000L, 3_000_000_000L), 1e-12, "writing is the slower side");
    }
}
