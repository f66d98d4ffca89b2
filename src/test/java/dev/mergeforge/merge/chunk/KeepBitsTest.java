package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.UncheckedIOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DELLA's keep bits: a round trip through the temporary file, and the error when java.io.tmpdir cannot take it. */
class KeepBitsTest {
    @Test
    void aChunkComesBackWithWhatItKept(@TempDir Path dir) {
        Parallel par = new Parallel(1);
        String old = System.getProperty("java.io.tmpdir");
        System.setProperty("java.io.tmpdir", dir.toString());
        try (KeepBits bits = new KeepBits("t")) {
            JavaChunkOps ops = new JavaChunkOps(par);
            float[] dropped = {0f, -0f, 1.5f, 0f, Float.NaN, -2f, 0f};
            bits.write(ops, 64, 1, Tile.ofArray(dropped.clone()));
            Tile again = Tile.ofArray(new float[] {3f, -0f, 1.5f, 7f, Float.NaN, -2f, 9f});
            bits.apply(ops, 64, 1, again);
            assertArrayEquals(dropped, again.toArray());
        } finally {
            System.setProperty("java.io.tmpdir", old);
            par.shutdown();
        }
    }

    /** ChunkFile's error, which KeptFloats' files give alike. */
    @Test
    void anUnwritableTmpdirNamesTheFolderAndTheFix(@TempDir Path dir) {
        Parallel par = new Parallel(1);
        String old = System.getProperty("java.io.tmpdir");
        Path missing = dir.resolve("no-such-folder");
        System.setProperty("java.io.tmpdir", missing.toString());
        try (KeepBits bits = new KeepBits("model.embed_tokens.weight")) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class,
                    () -> bits.write(new JavaChunkOps(par), 0, 0, Tile.ofArray(new float[] {1f})));
            String m = e.getMessage();
            assertTrue(m.contains("model.embed_tokens.weight") && m.contains(missing.toString()) && m.contains("set java.io.tmpdir"), m);
            assertTrue(!m.contains("\n"), m);
        } finally {
            System.setProperty("java.io.tmpdir", old);
            par.shutdown();
        }
    }
}
