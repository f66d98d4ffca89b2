package dev.mergeforge.api;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.eval.Evaluator;
import dev.mergeforge.eval.TextLoss;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Java API in process: same bytes as the CLI, events in order, cancellation and failures leave nothing behind. */
class MergeforgeApiTest {
    @TempDir static Path root;
    static RandomModels.Family fam;
    static Path config;
    static final BackendChoice JAVA = new BackendChoice("java", "cpu", 1);

    @BeforeAll
    static void family() throws IOException {
        fam = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, root.resolve("models"));
        config = MergeFixtures.yaml(root, "ties.yml", """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 0.7, density: 0.5}
                  - model: %s
                    parameters: {weight: [0.2, 0.9], density: 0.6}
                dtype: bfloat16
                """.formatted(fam.base(), fam.fineTunes().get(0), fam.fineTunes().get(1)));
    }

    @Test
    void mergeMatchesTheCliByteForByteAndReportsEventsInOrder() throws IOException {
        Path viaCli = root.resolve("cli-out"), viaApi = root.resolve("api-out");
        assertEquals(0, MergeFixtures.cli("merge", config.toString(), viaCli.toString(), "--backend", "java", "--threads", "1", "-q").exit());
        List<Event> events = new ArrayList<>();
        MergeResult r = Mergeforge.merge(MergeRequest.of(config, viaApi).withBackend(JAVA), events::add, new CancellationToken());

        assertEquals(viaApi.toAbsolutePath(), r.output());
        assertInstanceOf(Event.Started.class, events.getFirst());
        assertInstanceOf(Event.Finished.class, events.getLast());
        long written = events.stream().filter(e -> e instanceof Event.TensorWritten).count();
        assertEquals(r.tensors(), written);
        assertEquals(((Event.Started) events.getFirst()).tensors(), r.tensors());
        for (String f : List.of("model.safetensors", "config.json")) {
            assertArrayEquals(Files.readAllBytes(viaCli.resolve(f)), Files.readAllBytes(viaApi.resolve(f)), f);
        }
        // the dry run's byte count is what the merge wrote
        PlanResult plan = Mergeforge.plan(MergeRequest.of(config, root.resolve("not-written")), EventListener.NONE);
        assertEquals(Files.size(viaApi.resolve("model.safetensors")), plan.bytesOut());
        assertEquals(r.tensors(), plan.tensors());
        assertEquals("ties", plan.method());
        assertFalse(Files.exists(root.resolve("not-written")));
    }

    @Test
    void yamlTextWorksLikeAFile() throws IOException {
        Path out = root.resolve("yaml-out");
        MergeResult r = Mergeforge.merge(MergeRequest.ofYaml(Files.readString(config), out).withBackend(JAVA), EventListener.NONE,
                new CancellationToken());
        assertTrue(Files.isRegularFile(r.output().resolve("model.safetensors")));
    }

    @Test
    void cancellingAfterTheFirstTensorLeavesNothingBehind() throws IOException {
        Path out = root.resolve("cancel").resolve("merged");
        CancellationToken cancel = new CancellationToken();
        List<Event> events = new ArrayList<>();
        MergeforgeError e = assertThrows(MergeforgeError.class, () -> Mergeforge.merge(MergeRequest.of(config, out).withBackend(JAVA), ev -> {
            events.add(ev);
            if (ev instanceof Event.TensorWritten) cancel.cancel();
        }, cancel));
        assertTrue(e.cancelled());
        assertEquals(1, e.exitCode());
        assertEquals(1, events.stream().filter(ev -> ev instanceof Event.TensorWritten).count(), "stopped after the first tensor");
        assertInstanceOf(Event.Failed.class, events.getLast());
        try (Stream<Path> left = Files.list(out.getParent())) {
            assertEquals(List.of(), left.toList(), "no output and no temporary directory");
        }
    }

    @Test
    void aBadConfigIsAConfigurationErrorWithExitCodeTwo() {
        List<Event> events = new ArrayList<>();
        MergeforgeError e = assertThrows(MergeforgeError.class, () -> Mergeforge.merge(
                MergeRequest.ofYaml("merge_method: no_such_method\nmodels:\n  - model: " + fam.base() + "\n", root.resolve("bad")),
                events::add, new CancellationToken()));
        assertEquals(2, e.exitCode());
        assertFalse(e.cancelled());
        assertTrue(e.getMessage().contains("no_such_method") && !e.getMessage().contains("\n"), e.getMessage());
        assertEquals(List.of(new Event.Failed(e.getMessage(), 2)), events);
        assertFalse(Files.exists(root.resolve("bad")));
    }

    @Test
    void requestsAreValidatedWhenBuilt() {
        assertThrows(ConfigException.class, () -> new MergeRequest(config, "merge_method: linear", root, 0, 1, false, false, false, BackendChoice.AUTO, 0));
        assertThrows(ConfigException.class, () -> MergeRequest.of(config, root).withMaxShardBytes(0));
        assertThrows(ConfigException.class, () -> new BackendChoice("java", "cuda:0", 0));
        assertThrows(ConfigException.class, () -> new BackendChoice("auto", "cpu", -1));
        assertThrows(ConfigException.class, () -> new EvalRequest("m", null, List.of(), 128, 100, "cpu", 0));
        assertThrows(ConfigException.class, () -> new CalibrateRequest("m", "bogus", null, 1, 8, 1, "cpu", 0, false, root.resolve("s")));
    }

    @Test
    void evalEqualsTheEvaluatorAndCancelledCalibrationWritesNothing() throws IOException {
        Path text = MergeFixtures.yaml(root, "text.txt", "hello world\nthe quick brown fox\n");
        EvalResult r = Mergeforge.eval(new EvalRequest(fam.base().toString(), text, List.of(), 32, 10, "cpu", 1), EventListener.NONE,
                new CancellationToken());
        TextLoss ref = Evaluator.textLoss(fam.base(), text, 32, 1);
        assertEquals(ref.meanNll(), r.text().meanNll());
        assertEquals(ref.tokens(), r.text().tokens());
        assertEquals(List.of(), r.tasks());

        Path stats = root.resolve("calib").resolve("stats.safetensors");
        Files.createDirectories(stats.getParent());
        CalibrateRequest req = new CalibrateRequest(fam.base().toString(), "act_mean", text, 2, 8, 1, "cpu", 1, false, stats);
        CancellationToken cancel = new CancellationToken();
        MergeforgeError e = assertThrows(MergeforgeError.class, () -> Mergeforge.calibrate(req, ev -> cancel.cancel(), cancel));
        assertTrue(e.cancelled());
        try (Stream<Path> left = Files.list(stats.getParent())) {
            assertEquals(List.of(), left.toList(), "no stats file and no temporary file");
        }
        CalibrateResult ok = Mergeforge.calibrate(req, EventListener.NONE, new CancellationToken());
        assertTrue(Files.size(ok.output()) > 0);
        MergeforgeError missing = assertThrows(MergeforgeError.class, () -> Mergeforge.eval(
                new EvalRequest(fam.base().toString(), root.resolve("missing.txt"), List.of(), 32, 10, "cpu", 1), EventListener.NONE,
                new CancellationToken()));
        assertEquals(2, missing.exitCode());
        assertTrue(missing.getMessage().contains("missing.txt"), missing.getMessage());
    }

    @Test
    void mergeAndEvalScoresFromMemoryLikeAMergeToDiskThenAnEvalAndWritesNoFile() throws IOException {
        Path text = MergeFixtures.yaml(root, "sweep.txt", "a candidate is scored\non this text\n");
        Path disk = root.resolve("sweep-disk");
        Mergeforge.merge(MergeRequest.of(config, disk).withBackend(JAVA), EventListener.NONE, new CancellationToken());
        EvalResult ref = Mergeforge.eval(new EvalRequest(disk.toString(), text, List.of(), 32, 10, "cpu", 1), EventListener.NONE, new CancellationToken());

        // the scratch roots and this process's open and mapped files are listed while the candidate merges (each tensor)
        // and is scored (each note): no mergeforge entry may appear
        List<String> before = scratchEntries();
        List<String> seen = new ArrayList<>();
        List<Event> events = new ArrayList<>();
        MergeEvalRequest req = new MergeEvalRequest(config, null, 0, JAVA, text, List.of(), 32, 10);
        MergeEvalResult r = Mergeforge.mergeAndEval(req, ev -> {
            events.add(ev);
            if (ev instanceof Event.TensorWritten || ev instanceof Event.Note) seen.addAll(newEntries(before));
        }, new CancellationToken());
        assertEquals(List.of(), seen, "no file written while merging or scoring");
        assertEquals(List.of(), newEntries(before), "no file left");
        assertEquals(ref.text().meanNll(), r.eval().text().meanNll(), "bit for bit the same scores");
        assertEquals(ref.text().tokens(), r.eval().text().tokens());
        assertEquals(Mergeforge.IN_MEMORY, r.eval().model());
        assertTrue(events.stream().anyMatch(ev -> ev instanceof Event.Note n && n.message().startsWith("scored ")), "listened during the eval");
        assertTrue(events.stream().noneMatch(ev -> ev instanceof Event.Note n && n.message().startsWith("candidate in ")), "no scratch folder");
        assertEquals("(in memory)", events.stream().filter(ev -> ev instanceof Event.Finished).map(ev -> ((Event.Finished) ev).output())
                .findFirst().orElseThrow());

        CancellationToken cancel = new CancellationToken();
        List<Event> cancelled = new ArrayList<>();
        MergeforgeError e = assertThrows(MergeforgeError.class, () -> Mergeforge.mergeAndEval(req, ev -> {
            cancelled.add(ev);
            if (ev instanceof Event.TensorWritten) cancel.cancel();
        }, cancel));
        assertTrue(e.cancelled());
        assertEquals(1, cancelled.stream().filter(ev -> ev instanceof Event.TensorWritten).count(), "stopped after the first tensor");
        assertEquals(List.of(), newEntries(before));
    }

    @Test
    void aCandidateWithABuiltTokenizerGoesThroughAScratchFolderThatIsRemoved() throws IOException {
        Path text = MergeFixtures.yaml(root, "sweep-tok.txt", "a candidate is scored\non this text\n");
        Path tokConfig = MergeFixtures.yaml(root, "ties-tok.yml", Files.readString(config) + "tokenizer_source: base\n");
        Path disk = root.resolve("sweep-tok-disk");
        Mergeforge.merge(MergeRequest.of(tokConfig, disk).withBackend(JAVA), EventListener.NONE, new CancellationToken());
        EvalResult ref = Mergeforge.eval(new EvalRequest(disk.toString(), text, List.of(), 32, 10, "cpu", 1), EventListener.NONE, new CancellationToken());

        List<Event> events = new ArrayList<>();
        MergeEvalResult r = Mergeforge.mergeAndEval(new MergeEvalRequest(tokConfig, null, 0, JAVA, text, List.of(), 32, 10), events::add,
                new CancellationToken());
        assertEquals(ref.text().meanNll(), r.eval().text().meanNll(), "bit for bit the same scores");
        Path scratch = scratchOf(events);
        assertFalse(Files.exists(scratch), "the candidate is gone: " + scratch);
    }

    /**
     * Names under /dev/shm and the temporary folder that mention mergeforge, less the temporary files
     * other processes on this machine mark with their pid (".tmp-PID"), and the files under those
     * folders this process has open or mapped now (from /proc/self where there is one).
     */
    private static List<String> scratchEntries() throws IOException {
        List<Path> roots = List.of(Path.of("/dev/shm"), Path.of(System.getProperty("java.io.tmpdir")).toAbsolutePath());
        List<String> out = new ArrayList<>();
        for (Path dir : roots) {
            if (!Files.isDirectory(dir)) continue;
            try (Stream<Path> s = Files.list(dir)) {
                s.map(Path::toString).filter(n -> n.contains("mergeforge") && !otherProcess(n)).forEach(out::add);
            }
        }
        Path fds = Path.of("/proc/self/fd");
        if (Files.isDirectory(fds)) {
            try (Stream<Path> s = Files.list(fds)) {
                s.forEach(fd -> {
                    try {
                        String target = Files.readSymbolicLink(fd).toString();
                        if (roots.stream().anyMatch(r -> target.startsWith(r.toString())) && target.contains("mergeforge")) out.add("open: " + target);
                    } catch (IOException gone) {
                        // closed while listed
                    }
                });
            }
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                if (roots.stream().anyMatch(r -> line.contains(" " + r)) && line.contains("mergeforge")) out.add("mapped: " + line);
            }
        }
        return out;
    }

    private static boolean otherProcess(String name) {
        int at = name.lastIndexOf(".tmp-");
        return at >= 0 && !name.substring(at + 5).equals(String.valueOf(ProcessHandle.current().pid()));
    }

    private static List<String> newEntries(List<String> before) {
        try {
            List<String> now = new ArrayList<>(scratchEntries());
            now.removeAll(before);
            return now;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Path scratchOf(List<Event> events) {
        return events.stream().filter(ev -> ev instanceof Event.Note n && n.message().startsWith("candidate in "))
                .map(ev -> Path.of(((Event.Note) ev).message().substring("candidate in ".length()))).findFirst().orElseThrow();
    }
}
