package dev.mergeforge.io;

import dev.mergeforge.errors.ConfigException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OutputDirTest {
    @TempDir Path root;

    @Test
    void commitMovesTheFinishedDirectoryIntoPlace() throws IOException {
        Path target = root.resolve("out");
        try (OutputDir o = OutputDir.create(target, false, List.of(), 10)) {
            Files.writeString(o.temp().resolve("a.txt"), "x");
            assertFalse(Files.exists(target), "nothing at OUTPUT_DIR before commit");
            o.commit();
        }
        assertEquals("x", Files.readString(target.resolve("a.txt")));
        try (var s = Files.list(root)) {
            assertEquals(List.of(target), s.toList(), "no temporary directory left beside it");
        }
    }

    @Test
    void closingWithoutCommitLeavesNothingBehind() throws IOException {
        Path target = root.resolve("out");
        try (OutputDir o = OutputDir.create(target, false, List.of(), 10)) {
            Files.writeString(o.temp().resolve("half.safetensors"), "partial");
        }
        try (var s = Files.list(root)) {
            assertEquals(0, s.count());
        }
    }

    /**
     * As a signal's shutdown hook does, the removal runs while a writer still adds files (here as fast
     * as it can, until the directory is gone): a file added between the walk's deletes and the
     * directory's left the temporary directory behind after a single walk.
     */
    @Test
    void aWriterAddingFilesDuringTheRemovalLeavesNothingBehind() throws Exception {
        for (int round = 0; round < 10; round++) {
            Path target = root.resolve("out" + round);
            OutputDir o = OutputDir.create(target, false, List.of(), 10);
            for (int i = 0; i < 200; i++) Files.writeString(o.temp().resolve("f" + i), "x");
            java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
            Thread writer = Thread.ofPlatform().start(() -> {
                started.countDown();
                for (int i = 0; i < 100_000; i++) {
                    try {
                        Files.writeString(o.temp().resolve("late" + i), "x");
                    } catch (IOException e) {
                        return;   // the directory is gone
                    }
                }
            });
            started.await();
            o.close();
            writer.join(10_000);
            assertFalse(writer.isAlive(), "the writer stops once the directory is gone");
            try (var s = Files.list(root)) {
                assertEquals(List.of(), s.filter(p -> p.getFileName().toString().contains(".mergeforge-")).toList(), "round " + round);
            }
        }
    }

    @Test
    void anExistingOutputNeedsOverwriteAndIsThenReplaced() throws IOException {
        Path target = Files.createDirectories(root.resolve("out"));
        Files.writeString(target.resolve("old.txt"), "old");
        ConfigException e = assertThrows(ConfigException.class, () -> OutputDir.create(target, false, List.of(), 10));
        assertTrue(e.getMessage().contains("--overwrite") && e.getMessage().contains(target.toString()), e.getMessage());
        try (OutputDir o = OutputDir.create(target, true, List.of(), 10)) {
            Files.writeString(o.temp().resolve("new.txt"), "new");
            o.commit();
        }
        assertTrue(Files.exists(target.resolve("new.txt")));
        assertFalse(Files.exists(target.resolve("old.txt")));
    }

    @Test
    void theOutputMayNeverBeOrTouchAnInputModel() throws IOException {
        Path model = Files.createDirectories(root.resolve("model"));
        Files.writeString(model.resolve("config.json"), "{}");
        for (Path bad : List.of(model, model.resolve("sub"), root)) {
            ConfigException e = assertThrows(ConfigException.class, () -> OutputDir.create(bad, true, List.of(model), 10));
            assertTrue(e.getMessage().contains("input model"), e.getMessage());
        }
        assertEquals("{}", Files.readString(model.resolve("config.json")), "input untouched");
    }

    @Test
    void tooLittleDiskSpaceIsRefusedBeforeWriting() {
        Path target = root.resolve("out");
        var e = assertThrows(dev.mergeforge.errors.MergeforgeException.class, () -> OutputDir.create(target, false, List.of(), Long.MAX_VALUE / 2));
        assertTrue(e.getMessage().contains("disk space"), e.getMessage());
        assertFalse(Files.exists(target));
    }
}
