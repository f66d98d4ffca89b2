package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --max-memory}: shown with the predicted peak in the dry run and the log; a budget too small is one line naming the smallest that works. */
class MaxMemoryTest {
    @TempDir static Path models;
    static RandomModels.Family f;
    @TempDir Path dir;

    @BeforeAll
    static void family() {
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, models.resolve("fam"));
    }

    private Path ties() throws Exception {
        return MergeFixtures.yaml(dir, "cfg.yml", """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 1.0, density: 0.5}
                  - model: %s
                    parameters: {weight: 1.0, density: 0.5}
                """.formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1)));
    }

    @Test
    void dryRunShowsTheBudgetChunksAndPredictedPeak() throws Exception {
        MergeFixtures.Run r = MergeFixtures.cli("merge", ties().toString(), dir.resolve("out").toString(), "--dry-run", "--max-memory", "1GB");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("memory budget 1.00 GB (--max-memory)") && r.out().contains("chunks of ") && r.out().contains("predicted peak"), r.out());
        assertTrue(r.out().contains("in chunks"), "ties tensors are merged in chunks: " + r.out());
        assertFalse(Files.exists(dir.resolve("out")));
        MergeFixtures.Run d = MergeFixtures.cli("merge", ties().toString(), dir.resolve("out").toString(), "--dry-run");
        assertTrue(d.out().contains("default: a quarter of RAM"), d.out());
    }

    @Test
    void budgetTooSmallNamesTheSmallestThatWorks() throws Exception {
        MergeFixtures.Run r = CliFailure.mergeFails(2, ties(), dir.resolve("out"), List.of(f.base(), f.fineTunes().get(0), f.fineTunes().get(1)),
                List.of("--max-memory", "100MB"), "--max-memory", "too small", "needs at least", "raise --max-memory to");
        assertTrue(r.err().contains("0.10 GB"), r.err());
    }

    @Test
    void mergeUnderABudgetLogsIt() throws Exception {
        MergeFixtures.Run r = MergeFixtures.cli("merge", ties().toString(), dir.resolve("out").toString(), "--max-memory", "400MB");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("memory budget 0.40 GB (--max-memory)") && r.err().contains("in chunks"), r.err());
    }
}
