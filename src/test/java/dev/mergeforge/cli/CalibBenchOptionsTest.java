package dev.mergeforge.cli;

import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * calib-bench refuses counts it cannot run with one line naming the option, its value and the fix,
 * before it generates or opens any model (the --dir stays empty).
 */
class CalibBenchOptionsTest {
    @TempDir Path dir;

    @ParameterizedTest
    @CsvSource({"--repeats,0", "--samples,0", "--seq-len,-3", "--threads,-1"})
    void aCountBelowItsMinimumIsOneLineNamingTheOption(String option, String value) throws Exception {
        Path work = dir.resolve("work");
        MergeFixtures.Run r = MergeFixtures.cli("calib-bench", "--dir", work.toString(), option, value);
        assertEquals(2, r.exit(), r.err());
        String[] lines = r.err().strip().split("\n");
        assertEquals(1, lines.length, r.err());
        assertTrue(lines[0].startsWith("error: " + option + " " + value + ": must be"), lines[0]);
        assertTrue(lines[0].contains("give " + option), lines[0]);
        assertFalse(r.err().contains("Exception"), r.err());
        assertFalse(Files.exists(work), "nothing generated before the options are checked");
    }
}
