package dev.mergeforge.run;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.bench.MethodConfigs;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.fixtures.StatsFiles;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.merge.methods.RegMean;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * fisher and regmean under the memory budget (docs/data-informed.md, "Memory"): at the smallest
 * budget their estimate allows, the embedding is cut into many chunks, the strict ledger (assertions
 * are on in the suite) sees no buffer past the budget, the plan states RegMean's Grams apart and
 * adds them to the peak, and the chunked merge writes the bytes the whole-tensor path writes.
 */
class StatsBudgetTest {
    @TempDir static Path dir;
    static RandomModels.Family f;
    static List<Path> fisher = new ArrayList<>(), grams = new ArrayList<>();

    @BeforeAll
    static void models() {
        RandomModels.Builder b = RandomModels.builder().arch(Arch.LLAMA).hidden(128).intermediate(320).layers(1).heads(4).kvHeads(2)
                .vocab(512).maxPositions(64).dtype(DType.BF16).seed(21);
        f = RandomModels.family(b, 2, 0.02, dir.resolve("models"));
        for (int j = 0; j < 2; j++) {
            Path fp = dir.resolve("fisher" + j + ".safetensors"), gp = dir.resolve("gram" + j + ".safetensors");
            StatsFiles.fisher(f.fineTunes().get(j), fp, DType.F32, 100 + j);
            StatsFiles.grams(f.fineTunes().get(j), gp, 200 + j, n -> n.contains(".layers."));
            fisher.add(fp);
            grams.add(gp);
        }
    }

    record Merged(Merger.Result result, MemoryBudget.Estimate estimate, List<String> notes) {}

    static Merged merge(String method, Backend be, boolean smallest, Path out) throws Exception {
        Path cfg = Files.writeString(dir.resolve(method + ".yml"), MethodConfigs.withStats(method, f.fineTunes(), method.equals("fisher") ? fisher : grams));
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            boolean fuses = !be.name().equals("java");
            MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, 1L << 40, true, true, fuses, false);
            if (smallest) mem = MemoryBudget.estimate(plan, mem.smallestBytes(), true, true, fuses, false);
            List<String> notes = new ArrayList<>();
            Events ev = new Events() {
                @Override public void start(String m, int t, long bi, long bo, String b) {}
                @Override public void tensor(int i, int t, String n, long bi, long bo, double s) {}
                @Override public void note(String message) { notes.add(message); }
                @Override public void done(String o, int t, long bi, long bo, double s, long p, long r) {}
                @Override public void error(String m, int c) {}
            };
            // strict here (assertions are on in the suite): a buffer past the allowance throws out of the merge
            Merger.Result r = Merger.run(plan, in, out, Merger.Options.budgeted(be, 1, 1L << 40, true, false, null, ev, mem));
            return new Merged(r, mem, notes);
        }
    }

    @Test
    void fisherAndRegmeanStayWithinTheSmallestBudgetAndWriteTheWholeTensorBytes() throws Exception {
        List<Backend> backends = new ArrayList<>(List.of(new JavaBackend(1)));
        if (NativeBackend.isAvailable()) backends.add(new NativeBackend(1));
        for (String method : List.of("fisher", "regmean")) {
            // the oracle: every tensor whole (a backend without chunk ops takes the whole-tensor path)
            Path whole = dir.resolve("whole-" + method);
            try (JavaBackend tiles = new JavaBackend(1) {
                @Override public java.util.Optional<dev.mergeforge.backend.ChunkOps> chunkOps() { return java.util.Optional.empty(); }
            }) {
                merge(method, tiles, false, whole);
            }
            for (Backend be : backends) {
                Path out = dir.resolve(method + "-" + be.name());
                Merged m = merge(method, be, true, out);
                assertTrue(m.notes().stream().noneMatch(n -> n.contains("internal error")), method + " on " + be.name() + ": " + m.notes());
                long chunk = m.estimate().chunkElements();
                assertTrue(512L * 128 / chunk >= 8, "the embedding is many chunks long: chunks of " + chunk);
                String line = m.estimate().describe();
                if (method.equals("regmean")) {
                    // Grams of the layers' weights: the widest input is the MLP's 320
                    assertEquals(RegMean.gramBytes(320), m.estimate().heldBytes(), line);
                    assertTrue(line.contains("of RegMean Grams in float64") && line.contains("down_proj"), line);
                    assertTrue(m.estimate().peakBytes() >= MemoryBudget.BASELINE + MemoryBudget.WRITER + m.estimate().heldBytes(), line);
                } else {
                    assertEquals(0, m.estimate().heldBytes(), line);
                }
                // what the pools held at most is within the prediction less the fixed part and the Grams, which also counts the
                // mapped pages and one scratch chunk the pools never see (fisher: 73% of it here) and RegMean's float64 right-hand
                // sides on the heap (the bench measures those in the peak RSS, BENCHMARKS.md)
                long predicted = m.estimate().peakBytes() - MemoryBudget.BASELINE - MemoryBudget.WRITER - m.estimate().heldBytes();
                long measured = m.result().peakWorkingBytes();
                assertTrue(measured <= predicted && (method.equals("regmean") || measured >= predicted / 2), method + " on " + be.name()
                        + ": pools held " + measured + " bytes at most, predicted " + predicted);
                System.out.printf("%s on %s: chunks of %d, predicted working %d, pools held %d (%.0f%%)%n", method, be.name(), chunk, predicted,
                        measured, 100.0 * measured / predicted);
                sameTensors(whole, out);
            }
        }
        for (Backend be : backends) be.close();
    }

    static void sameTensors(Path a, Path b) {
        try (SafetensorsFile x = SafetensorsFile.open(a.resolve("model.safetensors")); SafetensorsFile y = SafetensorsFile.open(b.resolve("model.safetensors"))) {
            assertEquals(x.names(), y.names());
            for (String n : x.names()) {
                assertArrayEquals(x.tensor(n).data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), y.tensor(n).data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), n);
            }
        }
    }
}
