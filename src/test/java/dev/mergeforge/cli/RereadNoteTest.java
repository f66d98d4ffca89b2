package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MemoryBudget;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The log says, once per merge, when a multi-pass method's later passes must go back to disk: the
 * tensor's inputs exceed the page cache the budget leaves (physical memory less --max-memory).
 */
class RereadNoteTest {
    @TempDir Path dir;

    private MergeFixtures.Run merge(String method, String budget) throws Exception {
        RandomModels.Family f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, dir.resolve("fam-" + method + "-" + budget));
        Path cfg = MergeFixtures.yaml(dir, method + budget + ".yml", """
                merge_method: %s
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 1.0, density: 0.5}
                  - model: %s
                    parameters: {weight: 1.0, density: 0.5}
                """.formatted(method, f.base(), f.fineTunes().get(0), f.fineTunes().get(1)));
        return MergeFixtures.cli("merge", cfg.toString(), dir.resolve("out-" + method + budget).toString(), "--backend", "java",
                "--max-memory", budget);
    }

    private static long notes(String log) { return log.lines().filter(l -> l.contains("read them from disk again")).count(); }

    @Test
    void aBudgetLeavingNoPageCacheSaysOnceThatLaterPassesReadFromDisk() throws Exception {
        // a budget past physical memory leaves no page cache for any tensor's second pass
        String all = (MemoryBudget.physical() + (64L << 20)) / (1L << 20) + "MiB";
        MergeFixtures.Run r = merge("ties", all);
        assertEquals(0, r.exit(), r.err());
        String log = r.err() + r.out();
        assertEquals(1, notes(log), "one note per merge, though every tensor is multi-pass:\n" + log);
        assertTrue(log.contains("exceed the page cache the memory budget leaves (0.00 GB)") && log.contains("later pass"), log);
    }

    @Test
    void aBudgetLeavingRoomOrASinglePassMethodSaysNothing() throws Exception {
        MergeFixtures.Run ties = merge("ties", "1GB");
        assertEquals(0, ties.exit(), ties.err());
        assertEquals(0, notes(ties.err() + ties.out()), ties.err());
        // task_arithmetic reads each input once: nothing to read twice
        String all = (MemoryBudget.physical() + (64L << 20)) / (1L << 20) + "MiB";
        MergeFixtures.Run ta = merge("task_arithmetic", all);
        assertEquals(0, ta.exit(), ta.err());
        assertEquals(0, notes(ta.err() + ta.out()), ta.err());
    }
}
