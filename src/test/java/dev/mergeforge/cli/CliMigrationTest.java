package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import java.util.logging.Logger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** What a user migrating from mergekit hits first: --allow-crimes, output permissions, @revision, help and log formats. */
class CliMigrationTest {
    @TempDir Path dir;

    private RandomModels.Family family() { return MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, dir.resolve("m")); }

    @Test
    void mixingArchitecturesIsRefusedUnlessAllowCrimesAndThenAWarning() throws Exception {
        RandomModels.Family f = family();
        // the same shapes under another architecture name
        Path mistral = RandomModels.builder().arch(Arch.MISTRAL).hidden(32).intermediate(48).layers(3).heads(4).kvHeads(2)
                .vocab(64).maxPositions(64).dtype(DType.BF16).seed(9).write(dir.resolve("mistral"));
        Path cfg = MergeFixtures.linear(dir, "crime.yml", f.base(), mistral);
        CliFailure.mergeFails(1, cfg, dir.resolve("refused"), List.of(f.base(), mistral), List.of(),
                "architectures differ", "LlamaForCausalLM", "MistralForCausalLM", "--allow-crimes");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), dir.resolve("out").toString(), "-q", "--allow-crimes");
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("warning: architectures differ: " + f.base() + " is LlamaForCausalLM but " + mistral
                + " is MistralForCausalLM; merging anyway (--allow-crimes): tensors must still match by name and shape"), r.err().lines().toList());
        assertTrue(Files.exists(dir.resolve("out/model.safetensors")));
    }

    @Test
    void theOutputDirectoryGetsTheUmasksPermissionsNotPrivateOnes() throws Exception {
        assumeTrue(dir.getFileSystem().supportedFileAttributeViews().contains("posix"), "POSIX permissions");
        RandomModels.Family f = family();
        Path probe = Files.createDirectory(dir.resolve("probe"));
        Set<PosixFilePermission> umaskPerms = Files.getPosixFilePermissions(probe);
        assumeTrue(!umaskPerms.equals(PosixFilePermissions.fromString("rwx------")), "a umask of 077 cannot tell the two apart");
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", MergeFixtures.linear(dir, "c.yml", f.base(), f.fineTunes().getFirst()).toString(),
                out.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        assertEquals(PosixFilePermissions.toString(umaskPerms), PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
    }

    @Test
    void aRevisionIsReadFromTheCachedSnapshotOfThatRevision() throws Exception {
        assumeTrue(System.getenv("HF_HUB_CACHE") == null && System.getenv("HF_HOME") == null && System.getenv("XDG_CACHE_HOME") == null,
                "the cache root must come from user.home for this test");
        RandomModels.Family f = family();
        Path home = dir.resolve("home"), repo = home.resolve(".cache/huggingface/hub/models--org--tiny");
        copy(f.base(), repo.resolve("snapshots/aaaa1111"));
        copy(f.fineTunes().get(0), repo.resolve("snapshots/bbbb2222"));
        Files.createDirectories(repo.resolve("refs"));
        Files.writeString(repo.resolve("refs/main"), "aaaa1111");
        Files.writeString(repo.resolve("refs/v2"), "bbbb2222\n");
        Path ft2 = f.fineTunes().get(1);
        // the reference merges: the same models given as directories
        Path refV2 = merged("direct-v2", MergeFixtures.linear(dir, "d2.yml", f.fineTunes().get(0), ft2));
        Path refMain = merged("direct-main", MergeFixtures.linear(dir, "dm.yml", f.base(), ft2));
        String home0 = System.getProperty("user.home");
        System.setProperty("user.home", home.toString());
        try {
            Path v2 = merged("v2", MergeFixtures.linear(dir, "v2.yml", Path.of("org/tiny@v2"), ft2));
            assertSameTensors(refV2, v2);
            Path main = merged("main", MergeFixtures.yaml(dir, "main.yml", """
                    merge_method: linear
                    models:
                      - {model: {model: {path: org/tiny, revision: main}}, parameters: {weight: 1.0}}
                      - {model: %s, parameters: {weight: 1.0}}
                    """.formatted(ft2)));
            assertSameTensors(refMain, main);
            Path missing = MergeFixtures.linear(dir, "missing.yml", Path.of("org/tiny@v3"), ft2);
            CliFailure.mergeFails(1, missing, dir.resolve("none"), List.of(ft2), List.of(), "no revision 'v3'", "cached revisions: refs/main, refs/v2",
                    "hf download org/tiny --revision v3");
        } finally {
            System.setProperty("user.home", home0);
        }
    }

    private Path merged(String name, Path cfg) {
        Path out = dir.resolve(name);
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q");
        assertEquals(0, r.exit(), name + ": " + r.err());
        return out;
    }

    private static void assertSameTensors(Path a, Path b) {
        try (var x = dev.mergeforge.io.Checkpoint.open(a.toString()); var y = dev.mergeforge.io.Checkpoint.open(b.toString())) {
            assertEquals(x.names(), y.names());
            for (String n : x.names()) assertEquals(-1, x.tensor(n).data().mismatch(y.tensor(n).data()), n + ": " + a + " vs " + b);
        }
    }

    private static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path p : s.toList()) Files.copy(p, to.resolve(p.getFileName()));
        }
    }

    @Test
    void calibrateHelpShowsItsDefaultStatisticAndMethodsPrintWholeDefaultsAsIntegers() {
        MergeFixtures.Run help = MergeFixtures.cli("calibrate", "--help");
        assertEquals(0, help.exit());
        assertTrue(help.out().contains("Statistic (default: act_mean)"), help.out());
        MergeFixtures.Run m = MergeFixtures.cli("methods");
        assertTrue(m.out().contains("parameters.max_iter (default 10)"), m.out());
        assertTrue(m.out().contains("parameters.tol (default 1.0E-5)"), m.out());
        assertFalse(m.out().contains("default 10.0"), m.out());
    }

    @Test
    void javaLoggingPrintsOneConciseLinePerMessage() {
        PrintStream saved = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
            LogLines.install();
            Logger log = Logger.getLogger("dev.mergeforge.calib.Calibrator");
            log.info("calibrated tiny on cpu");
            log.warning("no calibration data given:\nsampling 4 blocks");
            log.fine("not shown");
            for (var h : Logger.getLogger("").getHandlers()) h.flush();
        } finally {
            System.setErr(saved);
            LogLines.install();
        }
        assertEquals(List.of("note: calibrated tiny on cpu", "warning: no calibration data given: sampling 4 blocks"),
                buf.toString(StandardCharsets.UTF_8).lines().toList());
    }

    @Test
    void aKeyWeAcceptButDoNotActOnIsAWarningNotSilence() throws Exception {
        RandomModels.Family f = family();
        Path cfg = MergeFixtures.yaml(dir, "rw.yml", """
                merge_method: passthrough
                slices:
                  - sources: [{model: %s, layer_range: [0, 2]}]
                    residual_weight: 0.5
                """.formatted(f.base()));
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), dir.resolve("out").toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("warning: " + cfg + ": slices[0].residual_weight is accepted for mergekit compatibility but changes nothing in mergeforge's output"),
                r.err().lines().toList());
    }
}
