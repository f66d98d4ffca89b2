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
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** OUTPUT_DIR is never half-written and never clobbers something it should not, through the CLI. */
class CliOutputSafetyTest {
    @TempDir static Path root;
    static RandomModels.Family f;
    static Path cfg;

    @BeforeAll
    static void family() throws Exception {
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 1, 1, root.resolve("models"));
        cfg = MergeFixtures.linear(root, "cfg.yml", f.base(), f.fineTunes().getFirst());
    }

    private static List<Path> inputs() { return List.of(f.base(), f.fineTunes().getFirst()); }

    private static MergeFixtures.Run merge(Path out, String... extra) {
        String[] args = new String[4 + extra.length];
        args[0] = "merge"; args[1] = cfg.toString(); args[2] = out.toString(); args[3] = "-q";
        System.arraycopy(extra, 0, args, 4, extra.length);
        return MergeFixtures.cli(args);
    }

    @Test
    void anExistingOutputIsRefusedUnlessOverwriteAndThenReplaced(@TempDir Path dir) throws Exception {
        Path out = Files.createDirectories(dir.resolve("out"));
        Files.writeString(out.resolve("keep.txt"), "mine");
        Map<String, String> before = CliFailure.hashes(out);
        for (String ev : List.of("--seed=0", "--events=json")) {
            MergeFixtures.Run r = merge(out, ev);
            CliFailure.assertOneLine(r, 2, out.toString(), "already exists", "--overwrite");
            if (ev.startsWith("--events")) assertTrue(r.out().contains("\"event\":\"error\""), r.out());
        }
        assertEquals(before, CliFailure.hashes(out), "the existing output is untouched");
        MergeFixtures.Run ok = merge(out, "--overwrite", "--backend", "java");
        assertEquals(0, ok.exit(), ok.err());
        assertFalse(Files.exists(out.resolve("keep.txt")));
        assertTrue(Files.exists(out.resolve("model.safetensors")));
        try (var s = Files.list(dir)) {
            assertEquals(List.of("out"), s.map(p -> p.getFileName().toString()).toList(), "no temporary or old directory left");
        }
    }

    @Test
    void anOutputThatIsInsideOrContainsAnInputIsRefusedEvenWithOverwrite() throws Exception {
        Map<String, String> before = CliFailure.hashes(root.resolve("models"));
        Path base = f.base();
        for (Path out : List.of(base, base.resolve("merged"), base.getParent(), root.resolve("models/../models/" + base.getFileName()))) {
            for (String ow : List.of("--seed=0", "--overwrite")) {
                MergeFixtures.Run r = merge(out, ow);
                CliFailure.assertOneLine(r, 2, "OUTPUT_DIR", "input model", "outside every input model");
            }
            assertEquals(before, CliFailure.hashes(root.resolve("models")), "inputs untouched for " + out);
        }
        assertFalse(Files.exists(base.resolve("merged")));
    }

    @Test
    void aSymlinkToAnInputIsStillAnInput(@TempDir Path dir) throws Exception {
        Path link = Files.createSymbolicLink(dir.resolve("alias"), f.fineTunes().getFirst());
        Map<String, String> before = CliFailure.hashes(root.resolve("models"));
        MergeFixtures.Run r = merge(link, "--overwrite");
        CliFailure.assertOneLine(r, 2, "OUTPUT_DIR", "input model");
        assertEquals(before, CliFailure.hashes(root.resolve("models")));
        assertTrue(Files.isSymbolicLink(link));
    }

    @Test
    void aFailureInTheMiddleOfTheMergeLeavesNothing(@TempDir Path dir) throws Exception {
        // the NaN is found only when its tensor is read, after the output's temp dir exists
        Path bad = StSurgery.copy(f.fineTunes().getFirst(), dir.resolve("bad"));
        Path st = bad.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(st);
        var h = StSurgery.header(all);
        String last = "model.norm.weight";
        int at = (int) (8 + StSurgery.headerLength(all) + h.get(last).get("data_offsets").get(0).asLong());
        all[at] = (byte) 0xC0;
        all[at + 1] = (byte) 0x7F;
        Files.write(st, all);
        Path c = MergeFixtures.yaml(dir, "c.yml", """
                merge_method: linear
                models:
                  - model: %s
                    parameters: {weight: 1.0}
                  - model: %s
                    parameters: {weight: 1.0}
                """.formatted(f.base(), bad));
        // found where the inputs are read: java's checked load; native's fused linear pass; ties' checked load
        // (the tile path) on both; each confirms on the stored bits
        Path ties = MergeFixtures.yaml(dir, "t.yml", """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 1.0, density: 0.5}
                """.formatted(f.base(), bad));
        for (String backend : dev.mergeforge.backend.ffm.NativeBackend.isAvailable() ? List.of("java", "native") : List.of("java")) {
            CliFailure.mergeFails(1, c, dir.resolve("out-" + backend), List.of(f.base(), bad), List.of("--backend", backend), last, "--allow-nonfinite");
            CliFailure.mergeFails(1, ties, dir.resolve("ties-" + backend), List.of(f.base(), bad), List.of("--backend", backend), last, "--allow-nonfinite");
        }
    }

    @Test
    void cudaWithoutAGpuIsOneLine(@TempDir Path dir) {
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.mergeforge.backend.cuda.CudaBackend.unavailableReason().isPresent(),
                "a GPU is present: the no-GPU path cannot be reached");
        Path out = dir.resolve("out");
        MergeFixtures.Run r = merge(out, "--backend", "cuda");
        CliFailure.assertOneLine(r, 2, "cuda");
        CliFailure.assertNothingWritten(out);
        MergeFixtures.Run d = merge(out, "--device", "cuda:1");
        CliFailure.assertOneLine(d, 2, "cuda");
        CliFailure.assertNothingWritten(out);
    }
}
