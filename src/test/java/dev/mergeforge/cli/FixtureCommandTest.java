package dev.mergeforge.cli;

import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** `mergeforge fixture`: the same family RandomModels writes, and one-line refusals. */
class FixtureCommandTest {
    @TempDir Path dir;

    @Test
    void writesRandomModelsFamily() throws IOException {
        MergeFixtures.Run r = MergeFixtures.cli("fixture", dir.resolve("cli").toString(), "--fine-tunes", "2", "--shards", "2", "--seed", "4");
        assertEquals(0, r.exit(), r.err());
        assertEquals(3, r.out().lines().count(), r.out());
        RandomModels.family(RandomModels.builder().shards(2).seed(4).dtype(dev.mergeforge.tensor.DType.BF16), 2, 0.002, dir.resolve("api"));
        for (String m : new String[] {"base", "ft1", "ft2"}) {
            try (var s = Files.list(dir.resolve("api").resolve(m))) {
                for (Path p : s.toList()) {
                    assertArrayEquals(Files.readAllBytes(p), Files.readAllBytes(dir.resolve("cli").resolve(m).resolve(p.getFileName())), m + "/" + p.getFileName());
                }
            }
        }
        String w = "model.layers.0.mlp.down_proj.weight";
        assertFalse(java.util.Arrays.equals(MergeFixtures.values(dir.resolve("cli/ft1"), w), MergeFixtures.values(dir.resolve("cli/base"), w)),
                "a fine-tune differs from its base");
    }

    @Test
    void refusals() throws IOException {
        CliFailure.assertOneLine(MergeFixtures.cli("fixture", dir.resolve("a").toString(), "--dtype", "int4"), 2, "--dtype int4");
        CliFailure.assertOneLine(MergeFixtures.cli("fixture", dir.resolve("b").toString(), "--layers", "0"), 2, "--layers");
        Files.createDirectories(dir.resolve("c/base"));
        Files.writeString(dir.resolve("c/base/keep.txt"), "mine");
        CliFailure.assertOneLine(MergeFixtures.cli("fixture", dir.resolve("c").toString()), 2, "not empty");
        assertEquals("mine", Files.readString(dir.resolve("c/base/keep.txt")));
    }
}
