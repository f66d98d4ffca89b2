package dev.mergeforge.io;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A reader of a file mapping's rows in turn that drops what it read with
 * {@link Madvise#dontNeedAround} keeps a bounded number of pages mapped, whatever the file's size:
 * the row's own pages and the fault-around block the kernel maps around each read fault, which
 * holds pages of rows read (and dropped) before. What this process holds is read from
 * /proc/self/smaps (the mapping's Rss), not timed. (Dropping only each row's own range, as LoRA's
 * W rows and a permuted view's own rows were, left up to the whole tensor mapped on the 70B slice.)
 */
class MadviseAroundTest {
    @TempDir Path dir;

    @Test
    void rowsReadInTurnAndDroppedAroundKeepTheMappingSmall() throws Exception {
        Path smaps = Path.of("/proc/self/smaps");
        Assumptions.assumeTrue(Files.isReadable(smaps), "no /proc/self/smaps here");
        long rowBytes = 16 << 10, rows = 1024, size = rows * rowBytes; // 16 MiB: 1024 rows of 16 KiB, off page-block edges below
        Path f = dir.resolve("rows.bin");
        Files.write(f, new byte[(int) size + 3000]);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            MemorySegment whole = ch.map(FileChannel.MapMode.READ_ONLY, 0, size + 3000, arena);
            // a tensor starting 3000 bytes in: its rows straddle the kernel's 64 KiB blocks
            MemorySegment tensor = whole.asSlice(3000, size);
            long most = 0, sum = 0;
            for (long r = 0; r < rows; r++) {
                MemorySegment row = tensor.asSlice(r * rowBytes, rowBytes);
                for (long b = 0; b < rowBytes; b += 512) sum += row.get(ValueLayout.JAVA_BYTE, b);
                Madvise.dontNeedAround(tensor, r * rowBytes, rowBytes);
                if (r % 64 == 63) most = Math.max(most, rssOf(smaps, whole.address()));
            }
            assertTrue(sum == 0, "the file is zeros");
            long bound = 2 * Madvise.FAULT_AROUND + rowBytes + 2 * 4096;
            assertTrue(most <= bound, "mapped pages stay within the row and the fault-around on either side (" + bound + " bytes), not "
                    + "growing with the rows read: at most " + most + " of " + size);
        }
    }

    /** The Rss of the mapping starting at {@code address}, in bytes (0 when not found). */
    private static long rssOf(Path smaps, long address) throws Exception {
        List<String> lines = Files.readAllLines(smaps);
        String start = Long.toHexString(address);
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i);
            int dash = l.indexOf('-');
            if (dash <= 0 || !l.substring(0, dash).replaceFirst("^0+", "").equals(start)) continue;
            for (int k = i + 1; k < lines.size() && k < i + 30; k++) {
                if (lines.get(k).startsWith("Rss:")) return Long.parseLong(lines.get(k).replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return 0;
    }
}
