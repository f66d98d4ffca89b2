package dev.mergeforge.api;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.run.Planner;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A candidate merged layer by layer scores, bit for bit, as the same candidate merged to disk and
 * evaluated, and as the candidate held in memory — untied Llama, GPT-2 (tied head, learned positions,
 * LayerNorm biases), Qwen2 (q/k/v biases), linear and TIES; AUTO picks the mode by the prediction against
 * the budget and says so; errors are one line.
 */
class LayerByLayerTest {
    @TempDir static Path root;
    static Path text, tasks;
    static final Map<Arch, RandomModels.Family> FAMILIES = new EnumMap<>(Arch.class);
    static final BackendChoice JAVA = new BackendChoice("java", "cpu", 1);

    @BeforeAll
    static void files() throws IOException {
        text = MergeFixtures.yaml(root, "eval.txt", "A CANDIDATE IS SCORED 12\nON THIS TEXT, LINE BY LINE!\nX\n");
        tasks = MergeFixtures.yaml(root, "tasks.jsonl", """
                {"prompt": "1 + 1 =", "answer": " 2"}
                {"prompt": "THE CAT", "answer": " SAT"}
                {"prompt": "ABC", "answer": "DEF"}
                """);
    }

    static synchronized RandomModels.Family family(Arch arch) {
        return FAMILIES.computeIfAbsent(arch, a -> MergeFixtures.family(a, DType.BF16, 2, 1, root.resolve(a.name())));
    }

    static Path config(Arch arch, String method) throws IOException {
        RandomModels.Family f = family(arch);
        String params = method.equals("ties") ? ", density: 0.5" : "";
        // linear takes no base model
        String base = method.equals("ties") ? "base_model: " + f.base() + "\n" : "";
        return MergeFixtures.yaml(root, arch + "-" + method + ".yml", """
                merge_method: %s
                %smodels:
                  - model: %s
                    parameters: {weight: 0.7%s}
                  - model: %s
                    parameters: {weight: [0.2, 0.9]%s}
                dtype: bfloat16
                """.formatted(method, base, f.fineTunes().get(0), params, f.fineTunes().get(1), params));
    }

    @ParameterizedTest
    @CsvSource({"LLAMA, linear", "LLAMA, ties", "GPT2, ties", "QWEN2, linear"})
    void layerByLayerScoresEqualTheDiskAndTheInMemoryCandidate(Arch arch, String method) throws IOException {
        Path cfg = config(arch, method);
        Path disk = root.resolve(arch + "-" + method + "-disk");
        Mergeforge.merge(MergeRequest.of(cfg, disk).withBackend(JAVA), EventListener.NONE, new CancellationToken());
        EvalResult ref = Mergeforge.eval(new EvalRequest(disk.toString(), text, List.of(tasks), 32, 10, "cpu", 1), EventListener.NONE,
                new CancellationToken());

        MergeEvalRequest req = new MergeEvalRequest(cfg, null, 0, JAVA, text, List.of(tasks), 32, 10);
        MergeEvalResult mem = Mergeforge.mergeAndEval(req.withMode(CandidateMode.MEMORY), EventListener.NONE, new CancellationToken());
        List<Event> events = new ArrayList<>();
        MergeEvalResult lay = Mergeforge.mergeAndEval(req.withMode(CandidateMode.LAYERS), events::add, new CancellationToken());

        assertEquals(CandidateMode.MEMORY, mem.mode());
        assertEquals(CandidateMode.LAYERS, lay.mode());
        for (EvalResult got : List.of(mem.eval(), lay.eval())) {
            assertEquals(ref.text().meanNll(), got.text().meanNll(), arch + " " + method + ": text loss bit for bit");
            assertEquals(ref.text().tokens(), got.text().tokens());
            assertEquals(ref.text().documents(), got.text().documents());
            EvalResult.TaskResult a = ref.tasks().getFirst(), b = got.tasks().getFirst();
            assertEquals(a.answerNll(), b.answerNll(), arch + " " + method + ": answer NLL bit for bit");
            assertEquals(a.accuracy(), b.accuracy());
            assertEquals(a.accuracyRows(), b.accuracyRows());
            assertEquals(a.nllRows(), b.nllRows());
        }
        assertTrue(lay.peakHeldBytes() > 0 && lay.peakHeldBytes() < mem.peakHeldBytes() / 2,
                "one stage held (" + lay.peakHeldBytes() + " bytes), not the model (" + mem.peakHeldBytes() + ")");
        assertTrue(events.stream().anyMatch(e -> e instanceof Event.Note n && n.message().startsWith("candidate mode: layers")
                && n.message().contains("asked for")), "the mode that ran is said");
        assertTrue(events.stream().anyMatch(e -> e instanceof Event.Note n && n.message().equals("scored " + tasks)));
        assertEquals("(in memory)", events.stream().filter(e -> e instanceof Event.Finished).map(e -> ((Event.Finished) e).output())
                .findFirst().orElseThrow());
    }

    @Test
    void aSlicesCandidateIsFedItsOutputLayersInOrder() throws IOException {
        RandomModels.Family f = family(Arch.LLAMA);
        // four output layers: layers 0-1 of one fine-tune, then 1-2 of the other (a stack the inputs do not have)
        Path cfg = MergeFixtures.yaml(root, "slices.yml", """
                slices:
                  - sources:
                      - model: %s
                        layer_range: [0, 2]
                  - sources:
                      - model: %s
                        layer_range: [1, 3]
                merge_method: passthrough
                dtype: bfloat16
                """.formatted(f.fineTunes().get(0), f.fineTunes().get(1)));
        Path disk = root.resolve("slices-disk");
        Mergeforge.merge(MergeRequest.of(cfg, disk).withBackend(JAVA), EventListener.NONE, new CancellationToken());
        EvalResult ref = Mergeforge.eval(new EvalRequest(disk.toString(), text, List.of(tasks), 32, 10, "cpu", 1), EventListener.NONE,
                new CancellationToken());
        MergeEvalResult lay = Mergeforge.mergeAndEval(new MergeEvalRequest(cfg, null, 0, JAVA, text, List.of(tasks), 32, 10)
                .withMode(CandidateMode.LAYERS), EventListener.NONE, new CancellationToken());
        assertEquals(ref.text().meanNll(), lay.eval().text().meanNll(), "bit for bit");
        assertEquals(ref.tasks().getFirst().answerNll(), lay.eval().tasks().getFirst().answerNll(), "bit for bit");
    }

    @Test
    void autoTakesMemoryWhenThePredictionFitsTheBudgetAndLayersWhenNot() throws IOException {
        Path cfg = config(Arch.LLAMA, "linear");
        MergeEvalRequest req = new MergeEvalRequest(cfg, null, 0, JAVA, text, List.of(tasks), 32, 10);
        LayerByLayer.Choice c;
        Parallel par = new Parallel(1);
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            LayerByLayer.Prepared p = LayerByLayer.prepare(plan, family(Arch.LLAMA).base(), req, par);
            c = LayerByLayer.choose(CandidateMode.AUTO, plan, p, 0, Long.MAX_VALUE);
            assertEquals(CandidateMode.MEMORY, c.mode());
            assertTrue(c.layersBytes() < c.memoryBytes(), c.describe());
            assertEquals(CandidateMode.MEMORY, LayerByLayer.choose(CandidateMode.AUTO, plan, p, 0, c.memoryBytes()).mode());
            assertEquals(CandidateMode.LAYERS, LayerByLayer.choose(CandidateMode.AUTO, plan, p, 0, c.memoryBytes() - 1).mode());
            assertEquals(CandidateMode.MEMORY, LayerByLayer.choose(CandidateMode.MEMORY, plan, p, 0, 1).mode(), "asked for: kept");
            assertEquals(CandidateMode.LAYERS, LayerByLayer.choose(CandidateMode.LAYERS, plan, p, 0, Long.MAX_VALUE).mode(), "asked for: kept");
        } finally {
            par.shutdown();
        }
        // end to end under a budget between the two predictions (the merge's own peak on top)
        long mergePeak = Mergeforge.plan(req.merge(root.resolve("unused")), EventListener.NONE).predictedPeakBytes();
        MergeEvalRequest tight = req.withMaxMemoryBytes(mergePeak + c.layersBytes());
        assertEquals(mergePeak + c.layersBytes(), Mergeforge.candidateBytes(tight), "the server admits it with the layer-by-layer peak");
        assertEquals(mergePeak + c.memoryBytes(), Mergeforge.candidateBytes(req.withMaxMemoryBytes(mergePeak + c.memoryBytes())));
        List<Event> events = new ArrayList<>();
        MergeEvalResult r = Mergeforge.mergeAndEval(tight, events::add, new CancellationToken());
        assertEquals(CandidateMode.LAYERS, r.mode());
        assertTrue(events.stream().anyMatch(e -> e instanceof Event.Note n && n.message().startsWith("candidate mode: layers")
                && n.message().contains("would not fit")), events.toString());
        MergeEvalResult roomy = Mergeforge.mergeAndEval(req.withMaxMemoryBytes(mergePeak + c.memoryBytes()), EventListener.NONE, new CancellationToken());
        assertEquals(CandidateMode.MEMORY, roomy.mode());
        assertEquals(roomy.eval().text().meanNll(), r.eval().text().meanNll());
    }

    @Test
    void errorsAreOneLineAndACancelledCandidateStops() throws IOException {
        Path cfg = config(Arch.LLAMA, "linear");
        // a built tokenizer exists only with a merged folder
        Path tok = MergeFixtures.yaml(root, "tok.yml", Files.readString(cfg) + "tokenizer_source: base\n");
        MergeforgeError e = assertThrows(MergeforgeError.class, () -> Mergeforge.mergeAndEval(
                new MergeEvalRequest(tok, null, 0, JAVA, text, List.of(), 32, 10).withMode(CandidateMode.LAYERS), EventListener.NONE,
                new CancellationToken()));
        assertEquals(2, e.exitCode());
        assertTrue(e.getMessage().contains("tokenizer_source") && e.getMessage().contains("mode auto or memory") && !e.getMessage().contains("\n"),
                e.getMessage());
        // an unknown model
        Path missing = MergeFixtures.yaml(root, "missing.yml", Files.readString(cfg).replace(family(Arch.LLAMA).fineTunes().get(1).toString(),
                root.resolve("no-such-model").toString()));
        MergeforgeError m = assertThrows(MergeforgeError.class, () -> Mergeforge.mergeAndEval(
                new MergeEvalRequest(missing, null, 0, JAVA, text, List.of(), 32, 10).withMode(CandidateMode.LAYERS), EventListener.NONE,
                new CancellationToken()));
        assertTrue(m.exitCode() > 0, "exit code " + m.exitCode());
        assertTrue(m.getMessage().contains("no-such-model") && !m.getMessage().contains("\n"), m.getMessage());
        // a bad request
        ConfigException bad = assertThrows(ConfigException.class, () -> new MergeEvalRequest(cfg, null, 0, JAVA, text, List.of(), 32, 10, 0, null));
        assertTrue(bad.getMessage().contains("mode is missing"), bad.getMessage());
        ConfigException budget = assertThrows(ConfigException.class, () -> new MergeEvalRequest(cfg, null, 0, JAVA, text, List.of(), 32, 10, -1,
                CandidateMode.AUTO));
        assertTrue(budget.getMessage().contains("memory budget -1"), budget.getMessage());
        // cancelled after the first merged tensor: the pass stops there
        CancellationToken cancel = new CancellationToken();
        List<Event> seen = new ArrayList<>();
        MergeforgeError c = assertThrows(MergeforgeError.class, () -> Mergeforge.mergeAndEval(
                new MergeEvalRequest(cfg, null, 0, JAVA, text, List.of(), 32, 10).withMode(CandidateMode.LAYERS), ev -> {
                    seen.add(ev);
                    if (ev instanceof Event.TensorWritten) cancel.cancel();
                }, cancel));
        assertTrue(c.cancelled());
        assertEquals(1, seen.stream().filter(ev -> ev instanceof Event.TensorWritten).count());
        assertFalse(seen.stream().anyMatch(ev -> ev instanceof Event.Note n && n.message().startsWith("scored ")));
    }
}
