package dev.mergeforge.bench;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.fixtures.SliceModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The slice bench refuses, before writing anything, a disk without room for its models. */
class SliceBenchTest {
    @TempDir Path dir;

    @Test
    void tooLittleDiskIsOneLineNamingTheNeedAndTheWayOut() {
        SliceModels.Slice s = SliceModels.of("405b", 1);
        ConfigException e = assertThrows(ConfigException.class, () -> SliceBench.requireSpace(dir, Long.MAX_VALUE / 2, s));
        assertTrue(e.getMessage().startsWith("bench --shape 405b --scale 1.0 needs ") && e.getMessage().contains(" GB free in " + dir)
                && e.getMessage().contains("smaller --scale"), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), e.getMessage());
        SliceBench.requireSpace(dir, 1, s); // room for one byte: no error
    }
}
