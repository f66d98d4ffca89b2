package dev.mergeforge.backend.ffm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reasons NativeLibrary gives when the library cannot be used name the problem and the fix. */
class NativeLibraryTest {
    @Test
    void unsetProperty() {
        String why = NativeLibrary.load(null);
        assertTrue(why.contains("mergeforge.native.lib") && why.contains("-D"), why);
    }

    @Test
    void missingFile(@TempDir Path dir) {
        String why = NativeLibrary.load(dir.resolve("libmergeops.so").toString());
        assertTrue(why.contains("does not exist") && why.contains("make native"), why);
    }

    @Test
    void emptyFile(@TempDir Path dir) throws IOException {
        Path lib = Files.createFile(dir.resolve("libmergeops.so"));
        String why = NativeLibrary.load(lib.toString());
        assertTrue(why.contains("is empty") && why.contains("make native"), why);
    }
}
