package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link ToolCache}: any change to an input's bytes or name, the command or a new file remakes the output; a failed run never counts. */
class ToolCacheTest {
    @Test
    void anyChangedInputOrFlagRemakesTheOutput(@TempDir Path dir) throws IOException {
        Path src = Files.createDirectories(dir.resolve("kernels/host"));
        Files.writeString(src.resolve("a.cu"), "__syncthreads();\n");
        Files.writeString(dir.resolve("kernels/b.cuh"), "#define X 1\n");
        List<String> cmd = List.of("g++", "-O1", "-o", "lib.so", "a.cu");
        String key = ToolCache.key(cmd, List.of(dir.resolve("kernels")));
        assertEquals(key, ToolCache.key(cmd, List.of(dir.resolve("kernels"))), "the same inputs give the same key");

        Path out = dir.resolve("lib.so");
        assertFalse(ToolCache.fresh(out, key), "nothing built yet");
        Files.writeString(out, "binary");
        assertFalse(ToolCache.fresh(out, key), "an output without its key (a failed or interrupted build) is remade");
        ToolCache.remember(out, key);
        assertTrue(ToolCache.fresh(out, key));

        // a mutant: one byte of a file the build includes
        Files.writeString(src.resolve("a.cu"), "__syncthreads();\n".replace(";", " ;"));
        assertNotEquals(key, ToolCache.key(cmd, List.of(dir.resolve("kernels"))), "a changed source");
        Files.writeString(src.resolve("a.cu"), "__syncthreads();\n");
        assertEquals(key, ToolCache.key(cmd, List.of(dir.resolve("kernels"))));
        assertNotEquals(key, ToolCache.key(List.of("g++", "-O1", "-fsanitize=thread", "-o", "lib.so", "a.cu"), List.of(dir.resolve("kernels"))),
                "another flag");
        Files.writeString(dir.resolve("kernels/c.cuh"), "");
        assertNotEquals(key, ToolCache.key(cmd, List.of(dir.resolve("kernels"))), "a new file in the tree, even empty");
        Files.delete(dir.resolve("kernels/c.cuh"));
        Files.move(dir.resolve("kernels/b.cuh"), dir.resolve("kernels/d.cuh"));
        assertNotEquals(key, ToolCache.key(cmd, List.of(dir.resolve("kernels"))), "a renamed file");

        ToolCache.forget(out);
        assertFalse(ToolCache.fresh(out, key), "forgotten before a rebuild");
        Files.delete(out);
        ToolCache.remember(out, key);
        assertFalse(ToolCache.fresh(out, key), "a key without its output");
    }
}
