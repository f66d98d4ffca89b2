package dev.mergeforge.run;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.bench.MethodConfigs;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.MemoryLedger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The budget enforced at run time (docs/io.md, "Memory budget"): every method that streams, run at
 * the smallest budget its estimate allows, holds no more buffers (tiles, staged chunks, writer
 * blocks) than that budget less the fixed part — the ledger is strict under the test suite's
 * assertions, so a wrong prediction fails the merge — and the ledger itself refuses, or notes once,
 * what crosses its allowance.
 */
class BudgetLedgerTest {
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        RandomModels.Builder b = RandomModels.builder().arch(Arch.LLAMA).hidden(128).intermediate(320).layers(1).heads(4).kvHeads(2)
                .vocab(512).maxPositions(64).dtype(DType.BF16).seed(13);
        f = RandomModels.family(b, 2, 0.02, dir.resolve("models"));
    }

    @Test
    void theLedgerRefusesOrNotesWhatCrossesItsAllowance() {
        MemoryLedger strict = new MemoryLedger(100, m -> { }, true);
        strict.charge(60, "a");
        strict.credit(10);
        strict.charge(50, "b"); // 100: at the allowance, not past it
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> strict.charge(1, "a tile of shape [1]"));
        assertTrue(e.getMessage().contains("101 bytes") && e.getMessage().contains("a tile of shape [1]") && e.getMessage().contains("a bug"), e.getMessage());
        List<String> notes = new ArrayList<>();
        MemoryLedger lenient = new MemoryLedger(10, notes::add, false);
        lenient.charge(11, "x");
        lenient.charge(5, "y");
        assertEquals(1, notes.size(), "one note per merge: " + notes);
        assertEquals(16, lenient.peak());
    }

    @Test
    void everyStreamedMethodStaysWithinTheSmallestBudgetItsEstimateAllows() throws Exception {
        List<Backend> backends = new ArrayList<>(List.of(new JavaBackend(1)));
        if (NativeBackend.isAvailable()) backends.add(new NativeBackend(1));
        Map<String, String> configs = MethodConfigs.all(f.base(), f.fineTunes());
        List<String> checked = new ArrayList<>();
        for (var e : configs.entrySet()) {
            Path cfg = Files.writeString(dir.resolve(e.getKey() + ".yml"), e.getValue());
            for (Backend be : backends) {
                try (Planner.Inputs in = new Planner.Inputs()) {
                    Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
                    boolean fuses = !be.name().equals("java");
                    MemoryBudget.Estimate probe = MemoryBudget.estimate(plan, 1L << 40, true, true, fuses, false);
                    if (probe.largest().endsWith("whole-tensor tiles")) continue; // not streamed yet: its tiles are the whole tensors
                    MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, probe.smallestBytes(), true, true, fuses, false);
                    List<String> notes = new ArrayList<>();
                    Events ev = new Events() {
                        @Override public void start(String m, int t, long bi, long bo, String b) {}
                        @Override public void tensor(int i, int t, String n, long bi, long bo, double s) {}
                        @Override public void note(String message) { notes.add(message); }
                        @Override public void done(String o, int t, long bi, long bo, double s, long p, long r) {}
                        @Override public void error(String m, int c) {}
                    };
                    Merger.Options o = Merger.Options.budgeted(be, 1, 1L << 40, true, false, null, ev, mem);
                    // strict here (assertions are on in the suite): a buffer past the allowance throws out of the merge
                    Merger.run(plan, in, dir.resolve("out-" + e.getKey() + "-" + be.name()), o);
                    assertTrue(notes.stream().noneMatch(n -> n.contains("internal error")), e.getKey() + " on " + be.name() + ": " + notes);
                    checked.add(e.getKey() + "/" + be.name());
                }
            }
        }
        assertTrue(checked.contains("ties/java") && checked.contains("sce/java") && checked.contains("slerp/java"), "checked: " + checked);
        assertTrue(!NativeBackend.isAvailable() || checked.contains("linear/native"), "the fused path is checked: " + checked);
    }
}
