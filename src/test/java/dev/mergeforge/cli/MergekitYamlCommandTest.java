package dev.mergeforge.cli;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `mergekit-yaml`: mergekit 0.1.4's flags, mapped or noted; the same bytes as `merge`; mergekit's output layout. */
class MergekitYamlCommandTest {
    @TempDir static Path dir;
    static RandomModels.Family fam;
    static Path dareCfg;
    static final String DARE = "merge_method: dare_ties\nbase_model: %s\nmodels:\n  - model: %s\n    parameters: {weight: 0.6, density: 0.5}\n"
            + "  - model: %s\n    parameters: {weight: 0.4, density: 0.7}\ndtype: bfloat16\n# a comment mergekit keeps in mergekit_config.yml\n";

    @BeforeAll
    static void models() throws IOException {
        fam = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, dir.resolve("fam"));
        Files.writeString(fam.base().resolve("special_tokens_map.json"), "{}");
        dareCfg = MergeFixtures.yaml(dir, "dare.yml", DARE.formatted(fam.base(), fam.fineTunes().get(0), fam.fineTunes().get(1)));
    }

    /** Every flag of mergekit 0.1.4's MergeOptions (no GPU ones: none here) in one command line. */
    static final List<String> ALL_CPU_FLAGS = List.of("--allow-crimes", "--transformers-cache", "/nowhere", "--lora-merge-cache", "/tmp/x",
            "--lora-merge-dtype", "bfloat16", "--device", "cpu", "--no-cuda", "--low-cpu-memory", "--out-shard-size", "20k",
            "--copy-tokenizer", "--clone-tensors", "--trust-remote-code", "--random-seed", "5", "--lazy-unpickle", "--write-model-card",
            "--safe-serialization", "-v", "--no-quiet", "--no-read-to-gpu", "--no-multi-gpu", "--num-threads", "2", "--async-write",
            "--write-threads", "2");

    @Test
    void everyFlagIsAcceptedAndTheShardsEqualMergesBytes() throws IOException {
        Path out = dir.resolve("mk-all"), ref = dir.resolve("ref-all");
        List<String> args = new ArrayList<>(List.of("mergekit-yaml", dareCfg.toString(), out.toString()));
        args.addAll(ALL_CPU_FLAGS);
        MergeFixtures.Run r = MergeFixtures.cli(args.toArray(String[]::new));
        assertEquals(0, r.exit(), r.err());
        for (String flag : List.of("--transformers-cache", "--lora-merge-cache", "--lora-merge-dtype", "--low-cpu-memory", "--clone-tensors",
                "--trust-remote-code", "--lazy-unpickle", "--async-write", "--write-threads")) {
            assertEquals(1, r.err().lines().filter(l -> l.startsWith("note: " + flag)).count(), flag + " noted once: " + r.err());
        }
        assertEquals(0, MergeFixtures.cli("merge", dareCfg.toString(), ref.toString(), "--seed", "5", "--out-shard-size", "20000", "-q").exit());
        Map<String, String> shards = hashes(out, "model"), refShards = hashes(ref, "model");
        assertTrue(shards.size() > 2, "20k shards: several files " + shards.keySet());
        assertEquals(refShards, shards, "same shard files, same bytes as merge --seed 5");
        assertTrue(shards.containsKey("model-00001-of-0000" + (shards.size() - 1) + ".safetensors"), shards.keySet().toString());
        assertTrue(shards.containsKey("model.safetensors.index.json"));
        assertEquals(Files.readString(dareCfg), Files.readString(out.resolve("mergekit_config.yml")), "the config text verbatim");
        for (String f : List.of("README.md", "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertNoTemporaries(out);
    }

    @Test
    void randomSeedIsOurSeed() throws IOException {
        Path a = dir.resolve("seed7"), b = dir.resolve("seed-ref7"), c = dir.resolve("seed-ref0");
        assertEquals(0, MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), a.toString(), "--random-seed", "7", "--quiet").exit());
        assertEquals(0, MergeFixtures.cli("merge", dareCfg.toString(), b.toString(), "--seed", "7", "-q").exit());
        assertEquals(0, MergeFixtures.cli("merge", dareCfg.toString(), c.toString(), "-q").exit());
        assertEquals(hashes(b, "model"), hashes(a, "model"));
        assertNotEquals(hashes(c, "model"), hashes(a, "model"), "the seed reaches DARE's draws");
    }

    @Test
    void noTokenizerAndNoModelCard() {
        Path out = dir.resolve("bare");
        MergeFixtures.Run r = MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), out.toString(), "--no-copy-tokenizer", "--no-write-model-card", "--quiet");
        assertEquals(0, r.exit(), r.err());
        Set<String> names = names(out);
        for (String f : List.of("README.md", "mergekit_config.yml", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            assertFalse(names.contains(f), f + " left out: " + names);
        }
        assertTrue(names.containsAll(List.of("config.json", "model.safetensors")), names.toString());
    }

    @Test
    void eventsEndWithDoneNamingOutPath() {
        Path out = dir.resolve("events");
        MergeFixtures.Run r = MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), out.toString(), "--events", "json", "--lazy-unpickle");
        assertEquals(0, r.exit(), r.err());
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.get(1).startsWith("{\"event\":\"start\""), lines.get(1));
        String done = lines.getLast();
        assertTrue(done.startsWith("{\"event\":\"done\"") && done.contains("\"output\":\"" + out.toAbsolutePath().normalize() + "\""), done);
        assertFalse(r.out().contains("/merged"), "the inner directory never shows: " + r.out());
        assertTrue(lines.get(0).contains("\"event\":\"note\"") && lines.get(0).contains("--lazy-unpickle: no effect"), "notes are events: " + lines);
        assertFalse(r.err().contains("note: --lazy-unpickle"), "and not stderr lines: " + r.err());
    }

    @Test
    void earlierMergeOrEmptyDirIsReplacedOtherDirsAreNot() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertEquals(0, MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), empty.toString(), "--quiet").exit());
        Files.writeString(empty.resolve("stale.txt"), "from before");
        assertEquals(0, MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), empty.toString(), "--quiet").exit());
        assertFalse(Files.exists(empty.resolve("stale.txt")), "an earlier merge is replaced whole");
        Path notModel = Files.createDirectories(dir.resolve("photos"));
        Files.writeString(notModel.resolve("cat.jpg"), "meow");
        MergeFixtures.Run r = MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), notModel.toString(), "--quiet");
        CliFailure.assertOneLine(r, 2, notModel.toString(), "neither empty nor an earlier merge");
        assertEquals("meow", Files.readString(notModel.resolve("cat.jpg")));
    }

    @Test
    void refusalsAreOneLineWithNothingWritten() throws IOException {
        Path out = dir.resolve("refused");
        CliFailure.assertOneLine(MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), out.toString(), "--device", "mps"), 2, "--device mps");
        CliFailure.assertOneLine(MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), out.toString(), "--out-shard-size", "1.5B"), 2, "--out-shard-size 1.5B");
        CliFailure.assertOneLine(MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), out.toString(), "--frobnicate"), 2, "--frobnicate");
        CliFailure.assertOneLine(MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), out.toString(), "-j", "0"), 2, "--num-threads 0");
        CliFailure.assertOneLine(MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), out.toString(), "--events", "xml"), 2, "--events xml");
        CliFailure.assertOneLine(MergeFixtures.cli("mergekit-yaml", dareCfg.toString(), fam.base().toString(), "--quiet"), 2, "input model");
        Path missing = MergeFixtures.yaml(dir, "missing.yml", "merge_method: linear\nmodels:\n  - model: " + dir.resolve("nope")
                + "\n    parameters: {weight: 1}\n  - model: " + fam.base() + "\n    parameters: {weight: 1}\n");
        MergeFixtures.Run r = MergeFixtures.cli("mergekit-yaml", missing.toString(), out.toString(), "--events", "json");
        CliFailure.assertOneLine(r, 1, "nope");
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("{\"event\":\"error\"")), r.out());
        CliFailure.assertNothingWritten(out);
        // a failure inside the merge itself: a truncated input shard
        RandomModels.Family broken = MergeFixtures.family(Arch.LLAMA, DType.BF16, 1, 1, dir.resolve("broken"));
        Files.writeString(broken.base().resolve("model.safetensors"), "truncated");
        Path cfg = MergeFixtures.linear(dir, "broken.yml", broken.base(), broken.fineTunes().getFirst());
        Path out2 = dir.resolve("refused2");
        CliFailure.assertOneLine(MergeFixtures.cli("mergekit-yaml", cfg.toString(), out2.toString(), "--quiet"), 1, "model.safetensors");
        CliFailure.assertNothingWritten(out2);
    }

    @Test
    void flagsMapToOurOptions() {
        MergekitYamlCommand c = parsed("--gpu-rich", "-j", "3", "-vv");
        List<String> notes = new ArrayList<>();
        List<String> a = c.mergeArguments(notes);
        assertTrue(String.join(" ", a).contains("--device cuda"), a.toString());
        assertTrue(String.join(" ", a).contains("--threads 3"), a.toString());
        assertTrue(a.contains("--debug"), "-vv: stack traces");
        assertEquals(3, notes.size(), "gpu-rich's low-cpu-memory, read-to-gpu and multi-gpu noted: " + notes);
        assertTrue(String.join(" ", parsed("--cuda", "--device", "cuda:1").mergeArguments(new ArrayList<>())).contains("--device cuda:1"));
        assertTrue(String.join(" ", parsed("--device", "cpu").mergeArguments(new ArrayList<>())).matches(".*--backend (native|java).*"));
        assertFalse(String.join(" ", parsed().mergeArguments(new ArrayList<>())).contains("--backend"), "no flag: our auto");
        assertTrue(parsed("--copy-tokenizer", "--no-copy-tokenizer").copyTokenizer == Boolean.FALSE, "last of a pair wins");
        assertTrue(parsed("--no-write-model-card", "--write-model-card").writeModelCard == Boolean.TRUE, "last of a pair wins");
    }

    @Test
    void shardSizesParseAsMergekitDoes() {
        assertEquals(5_000_000_000L, MergekitYamlCommand.parseKmb("5B"));
        assertEquals(5_000_000_000L, MergekitYamlCommand.parseKmb("5b"));
        assertEquals(500_000_000L, MergekitYamlCommand.parseKmb("500M"));
        assertEquals(20_000L, MergekitYamlCommand.parseKmb("20k"));
        assertEquals(123L, MergekitYamlCommand.parseKmb("123"));
        assertEquals(0L, MergekitYamlCommand.parseKmb("0"), "0: no limit, one shard");
        assertTrue(String.join(" ", parsed("--out-shard-size", "0").mergeArguments(new ArrayList<>())).contains("--out-shard-size " + Long.MAX_VALUE));
        for (String bad : List.of("1.5B", "5GB", "", "-3", "B", "99999999999999B")) {
            assertThrows(ConfigException.class, () -> MergekitYamlCommand.parseKmb(bad), bad);
        }
    }

    private static MergekitYamlCommand parsed(String... flags) {
        CommandLine cl = Main.commandLine();
        List<String> a = new ArrayList<>(List.of("mergekit-yaml", "c.yml", "out"));
        a.addAll(List.of(flags));
        CommandLine.ParseResult pr = cl.parseArgs(a.toArray(String[]::new));
        return (MergekitYamlCommand) pr.subcommand().commandSpec().userObject();
    }

    /** SHA-256 of the files of dir whose names start with prefix. */
    private static Map<String, String> hashes(Path d, String prefix) throws IOException {
        Map<String, String> m = new TreeMap<>();
        try (Stream<Path> s = Files.list(d)) {
            for (Path p : s.toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith(prefix)) m.put(n, CliFailure.sha256(Files.readAllBytes(p)));
            }
        }
        return m;
    }

    private static Set<String> names(Path d) {
        try (Stream<Path> s = Files.list(d)) {
            return new TreeSet<>(s.map(p -> p.getFileName().toString()).toList());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void assertNoTemporaries(Path out) {
        Set<String> left = names(out.toAbsolutePath().getParent());
        assertTrue(left.stream().noneMatch(n -> n.contains(".mergeforge-")), "temporaries beside " + out + ": " + left);
    }
}
