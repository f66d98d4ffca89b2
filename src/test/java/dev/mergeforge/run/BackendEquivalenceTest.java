package dev.mergeforge.run;

import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every method merged end to end on the Java and the native backend must give the same bytes
 * (random methods included, for one seed); random methods repeat for a seed and change with it.
 */
class BackendEquivalenceTest {
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        f = MergeFixtures.family(Arch.QWEN2, DType.BF16, 3, 1, dir.resolve("models"));
    }

    /** One config body (after merge_method) per method; the models take per-model parameters P. */
    static List<String[]> configs() {
        return List.of(
                new String[] {"linear", "", "weight: 0.7"},
                new String[] {"linear", "normalize: false", "weight: 0.3"},
                new String[] {"task_arithmetic", "lambda: 0.8", "weight: 0.5"},
                new String[] {"task_arithmetic", "normalize: true, lambda: 1.3", "weight: 0.4"},
                new String[] {"ties", "", "weight: 1.0, density: 0.4"},
                new String[] {"dare_linear", "", "weight: 1.0, density: 0.5"},
                new String[] {"dare_ties", "", "weight: 0.6, density: 0.3"},
                new String[] {"breadcrumbs", "", "weight: 1.0, density: 0.8, gamma: 0.05"},
                new String[] {"breadcrumbs_ties", "", "weight: 1.0, density: 0.8, gamma: 0.05"},
                new String[] {"della", "", "weight: 1.0, density: 0.5, epsilon: 0.1"},
                new String[] {"della_linear", "", "weight: 1.0, density: 0.5, epsilon: 0.1"},
                new String[] {"multislerp", "", "weight: 1.0"},
                new String[] {"karcher", "", ""},
                new String[] {"model_stock", "", ""},
                new String[] {"sce", "select_topk: 0.5", ""},
                new String[] {"ram", "", ""},
                new String[] {"ramplus_tl", "r: 0.5, alpha: 1.0", ""});
    }

    static String yaml(String method, String global, String perModel, boolean withBase) {
        StringBuilder y = new StringBuilder("merge_method: " + method + "\n");
        if (withBase) y.append("base_model: ").append(f.base()).append('\n');
        y.append("models:\n");
        for (Path p : f.fineTunes()) {
            y.append("  - model: ").append(p).append('\n');
            if (!perModel.isEmpty()) y.append("    parameters: {").append(perModel).append("}\n");
        }
        if (!global.isEmpty()) y.append("parameters: {").append(global).append("}\n");
        return y.toString();
    }

    static void assertSameTensors(Path a, Path b, boolean same) {
        try (Checkpoint x = Checkpoint.open(a.toString()); Checkpoint y = Checkpoint.open(b.toString())) {
            boolean allSame = true;
            for (String n : x.names()) {
                long mismatch = x.tensor(n).data().mismatch(y.tensor(n).data());
                if (same) assertEquals(-1, mismatch, n + " differs between " + a + " and " + b);
                allSame &= mismatch == -1;
            }
            if (!same) assertEquals(false, allSame, a + " and " + b + " should differ");
        }
    }

    Path merge(String name, String yaml, String backend, String seed) throws Exception {
        Path cfg = MergeFixtures.yaml(dir, name + ".yml", yaml);
        Path out = dir.resolve(name + "-" + backend + "-" + seed);
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "--backend", backend, "--seed", seed, "-q", "--overwrite");
        assertEquals(0, r.exit(), r.err());
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void javaAndNativeBackendsWriteTheSameBytes(String method, String global, String perModel) throws Exception {
        assumeTrue(NativeBackend.isAvailable(), "native library not built: " + NativeBackend.unavailableReason());
        boolean base = !method.equals("linear") && !method.equals("multislerp") && !method.equals("karcher");
        String yaml = yaml(method, global, perModel, base);
        assertSameTensors(merge(method, yaml, "java", "3"), merge(method, yaml, "native", "3"), true);
    }

    @Test
    void twoModelMethodsAgreeAcrossBackendsToo() throws Exception {
        assumeTrue(NativeBackend.isAvailable(), "native library not built: " + NativeBackend.unavailableReason());
        Path ft = f.fineTunes().getFirst();
        String[][] cases = {
                {"slerp", "merge_method: slerp\nbase_model: %1$s\nmodels:\n  - model: %1$s\n  - model: %2$s\nparameters: {t: [0.1, 0.9]}\n"},
                {"arcee_fusion", "merge_method: arcee_fusion\nbase_model: %1$s\nmodels:\n  - model: %1$s\n  - model: %2$s\n"},
                {"nearswap", "merge_method: nearswap\nbase_model: %1$s\nmodels:\n  - model: %1$s\n  - model: %2$s\nparameters: {t: 0.01}\n"},
                {"nuslerp", "merge_method: nuslerp\nmodels:\n  - model: %1$s\n    parameters: {weight: 0.3}\n  - model: %2$s\n    parameters: {weight: 0.7}\n"},
                {"passthrough", "merge_method: passthrough\nmodels:\n  - model: %2$s\n    parameters: {scale: 0.5}\n"}};
        for (String[] c : cases) {
            String yaml = c[1].formatted(f.base(), ft);
            assertSameTensors(merge(c[0], yaml, "java", "0"), merge(c[0], yaml, "native", "0"), true);
        }
    }

    /** Linear and task arithmetic take the fused path on the native backend: no float32 tiles, inputs staged as stored, results computed into the writer's blocks. */
    @Test
    void fusedPathSkipsTheFloatTiles() throws Exception {
        assumeTrue(NativeBackend.isAvailable(), "native library not built: " + NativeBackend.unavailableReason());
        String yaml = yaml("task_arithmetic", "lambda: 0.8", "weight: 0.5", true) + "dtype: float16\n";
        for (String backend : List.of("java", "native")) {
            Path cfg = MergeFixtures.yaml(dir, "fused-" + backend + ".yml", yaml);
            MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), dir.resolve("fused-" + backend).toString(),
                    "--backend", backend, "--events", "json", "--overwrite");
            assertEquals(0, r.exit(), r.err());
            long peak = Long.parseLong(r.out().replaceAll("(?s).*\"peak_working_bytes\":(\\d+).*", "$1"));
            long largest = 0;
            try (Checkpoint c = Checkpoint.open(f.base().toString())) {
                for (String n : c.names()) largest = Math.max(largest, c.tensor(n).numel());
            }
            // java: passes over chunks (docs/methods.md) — one chunk each of base, 3 models and the output
            // (a tensor smaller than a chunk is one chunk), plus the output chunk staged as float16;
            // native: no tiles, only the stored bf16 bytes of base and 3 models staged for at most two tensors at once
            if (backend.equals("java")) assertEquals(5 * 4 * largest + 2 * largest, peak, "java working set");
            else assertTrue(peak > 0 && peak <= 2 * 4 * 2 * largest, "native working set " + peak + " for largest " + largest);
        }
        assertSameTensors(dir.resolve("fused-java"), dir.resolve("fused-native"), true);
    }

    @Test
    void randomMethodsRepeatForASeedAndChangeWithIt() throws Exception {
        String yaml = yaml("dare_ties", "", "weight: 1.0, density: 0.5", true);
        Path a = merge("dare-seed", yaml, "java", "11"), b = merge("dare-seed2", yaml, "java", "11"), c = merge("dare-seed3", yaml, "java", "12");
        assertSameTensors(a, b, true);
        assertSameTensors(a, c, false);
        assertNotEquals(a, c);
    }
}
