package dev.mergeforge.cli;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Checkpoints that cannot be merged together, through the CLI: exit 1, one line naming model and tensor, nothing written. */
class CliCheckpointErrorsTest {
    @TempDir static Path models;
    static RandomModels.Family f;
    @TempDir Path dir;

    static final String UP = "model.layers.1.mlp.up_proj.weight";

    @BeforeAll
    static void family() {
        f = MergeFixtures.family(Arch.LLAMA, DType.BF16, 1, 1, models.resolve("fam"));
    }

    static RandomModels.Builder llama() {
        return RandomModels.builder().arch(Arch.LLAMA).hidden(32).intermediate(48).layers(3).heads(4).kvHeads(2)
                .vocab(64).maxPositions(64).dtype(DType.BF16).seed(7);
    }

    /** A two-model linear merge of the family's fine-tune and `other`, expected to fail with `exit`. */
    private void linearFails(Path other, int exit, String... mustContain) throws Exception {
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", f.fineTunes().getFirst(), other);
        List<Path> inputs = Files.exists(other) ? List.of(f.fineTunes().getFirst(), other) : List.of(f.fineTunes().getFirst());
        CliFailure.mergeFails(exit, cfg, dir.resolve("out"), inputs, List.of("--backend", "java"), mustContain);
    }

    @Test
    void missingModelPath() throws Exception {
        linearFails(dir.resolve("no-such-model"), 1, "no-such-model", "not found");
    }

    @Test
    void directoryWithoutWeights() throws Exception {
        Path m = Files.createDirectories(dir.resolve("empty"));
        Files.copy(f.base().resolve("config.json"), m.resolve("config.json"));
        linearFails(m, 1, "empty", "no weights");
    }

    @Test
    void pytorchPicklesAreRefusedWithTheConversionHint() throws Exception {
        Path m = Files.createDirectories(dir.resolve("pickled"));
        Files.copy(f.base().resolve("config.json"), m.resolve("config.json"));
        Files.write(m.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2, 'c', 'x'});
        linearFails(m, 1, "pickled", "pytorch_model.bin", "safetensors");
    }

    @Test
    void differentArchitectures() throws Exception {
        Path q = RandomModels.builder().arch(Arch.QWEN2).hidden(32).intermediate(48).layers(3).heads(4).kvHeads(2)
                .vocab(64).maxPositions(64).dtype(DType.BF16).seed(7).write(dir.resolve("qwen"));
        linearFails(q, 1, "architectures differ", "qwen");
    }

    @Test
    void aTensorMissingFromOneModel() throws Exception {
        Path m = StSurgery.copy(f.base(), dir.resolve("holed"));
        StSurgery.removeTensor(m.resolve("model.safetensors"), UP);
        linearFails(m, 1, UP, "holed", "missing");
    }

    @Test
    void shapeMismatchNamesBothShapesAndBothModels() throws Exception {
        Path m = llama().intermediate(64).write(dir.resolve("wider"));
        linearFails(m, 1, "model.layers.0.mlp", "[48, 32]", "[64, 32]", f.fineTunes().getFirst().toString(), "wider",
                "not fine-tunes of one architecture");
    }

    @Test
    void vocabularyMismatchSaysSo() throws Exception {
        Path m = llama().vocab(80).write(dir.resolve("bigvocab"));
        linearFails(m, 1, "model.embed_tokens.weight", "[64, 32]", "[80, 32]", "vocabularies differ", "tokenizer");
    }

    @Test
    void anInfInAnInputNamesTheTensor() throws Exception {
        Path m = StSurgery.copy(f.base(), dir.resolve("inf"));
        byte[] all = Files.readAllBytes(m.resolve("model.safetensors"));
        long n = StSurgery.headerLength(all);
        int at = (int) (8 + n + StSurgery.header(all).get(UP).get("data_offsets").get(0).asLong());
        all[at] = (byte) 0x80;     // bf16 0x7F80 = +Inf, little-endian
        all[at + 1] = (byte) 0x7F;
        Files.write(m.resolve("model.safetensors"), all);
        linearFails(m, 1, UP, "inf", "--allow-nonfinite");
    }

    @Test
    void mixedFloatDtypesMergeToTheWeightedMean() throws Exception {
        Path a = llama().dtype(DType.F32).seed(1).write(dir.resolve("f32"));
        Path b = llama().dtype(DType.F16).seed(2).write(dir.resolve("f16"));
        Path c = llama().dtype(DType.BF16).seed(3).write(dir.resolve("bf16"));
        Path cfg = MergeFixtures.yaml(dir, "cfg.yml", """
                merge_method: linear
                models:
                  - model: %s
                    parameters: {weight: 0.5}
                  - model: %s
                    parameters: {weight: 0.25}
                  - model: %s
                    parameters: {weight: 0.25}
                dtype: float32
                """.formatted(a, b, c));
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        try (Checkpoint ca = Checkpoint.open(a.toString()); Checkpoint cb = Checkpoint.open(b.toString());
             Checkpoint cc = Checkpoint.open(c.toString()); Checkpoint m = Checkpoint.open(out.toString())) {
            assertEquals(DType.F16, cb.tensor(UP).dtype());
            for (String name : ca.names()) {
                double[] x = MergeFixtures.values(ca.tensor(name)), y = MergeFixtures.values(cb.tensor(name)),
                        z = MergeFixtures.values(cc.tensor(name)), o = MergeFixtures.values(m.tensor(name));
                for (int i = 0; i < x.length; i++) {
                    double ref = 0.5 * x[i] + 0.25 * y[i] + 0.25 * z[i];
                    assertEquals(ref, o[i], 1e-6 * Math.max(1, Math.abs(ref)), name + "[" + i + "]");
                }
            }
        }
    }
}
