package dev.mergeforge.io;

import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The page-cache calls (docs/io.md, "Inputs larger than memory") against the kernel itself:
 * {@link PageCache#residentBytes} agrees with a file just read (all of it) and just dropped (none of
 * it); a range is dropped by whole pages only; a buffered {@link StreamingWriter} that drops behind
 * it leaves no more than its last partial page cached and writes the same bytes as one that does not.
 * Skipped where posix_fadvise / mincore are unavailable.
 */
class PageCacheTest {
    @TempDir Path dir;

    @Test
    void residencyFollowsReadsAndDrops() throws Exception {
        assumeTrue(PageCache.canDrop(), "posix_fadvise is not available here");
        Path p = dir.resolve("x.bin");
        byte[] b = new byte[40 * 4096 + 100];
        new Random(1).nextBytes(b);
        Files.write(p, b);
        int fd = PageCache.open(p);
        try {
            assertTrue(PageCache.writeBack(fd, 0, b.length, true), "sync_file_range on a read-only descriptor");
            Files.readAllBytes(p);
            long full = PageCache.residentBytes(p);
            assumeTrue(full == 41 * 4096L, "the page cache did not keep a file just read (" + full + " bytes): nothing to measure");
            // bytes [5000, 5000 + 3 pages): pages 2 and 3 lie wholly inside, pages 1 and 4 only partly
            assertTrue(PageCache.dropRange(fd, 5000, 3 * 4096));
            assertEquals(39 * 4096L, PageCache.residentBytes(p));
            assertTrue(PageCache.dropRange(fd, 0, b.length + 4096));
            assertEquals(0, PageCache.residentBytes(p));
        } finally {
            PageCache.close(fd);
        }
        assertArrayEquals(b, Files.readAllBytes(p), "dropping changes nothing in the file");
    }

    @Test
    void aBufferedWriterDropsWhatItHasWritten() throws Exception {
        assumeTrue(PageCache.canDrop(), "posix_fadvise is not available here");
        List<SafetensorsWriter.Entry> entries = List.of(new SafetensorsWriter.Entry("a", DType.F32, Shape.of(300_000)),
                new SafetensorsWriter.Entry("b", DType.BF16, Shape.of(123_457)));
        byte[][] data = {new byte[1_200_000], new byte[246_914]};
        new Random(2).nextBytes(data[0]);
        new Random(3).nextBytes(data[1]);
        Path kept = dir.resolve("kept.safetensors"), dropped = dir.resolve("dropped.safetensors");
        for (Path p : List.of(kept, dropped)) {
            try (StreamingWriter w = new StreamingWriter(p, entries, Map.of("format", "pt"), 64 * 1024, false, p == dropped)) {
                assertTrue(!w.direct());
                w.write("a", MemorySegment.ofArray(data[0]));
                w.write("b", MemorySegment.ofArray(data[1]));
                w.finish();
            }
        }
        long size = Files.size(kept);
        assumeTrue(PageCache.residentBytes(kept) > size / 2, "the page cache did not keep a file just written: nothing to compare");
        // what may stay: the last partial page (the file is cut after the last block's write)
        assertTrue(PageCache.residentBytes(dropped) <= 4096, "resident after writing with drop-behind: " + PageCache.residentBytes(dropped));
        assertArrayEquals(Files.readAllBytes(kept), Files.readAllBytes(dropped));
    }
}
