package dev.mergeforge.model.cuda;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.calib.ActMeanStats;
import dev.mergeforge.calib.CalibrationData;
import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.calib.TokenBlocks;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.model.ForwardPassTest;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.TinyModel;
import dev.mergeforge.model.Zoo;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The calibration forward pass on a real GPU (JCuda, the driver's JIT of calib.ptx, cuBLAS sgemm)
 * against the CPU pass, with the same tolerances as the emulated run. Skips with the reason when
 * there is no usable GPU; -Dmergeforge.cuda.device=N picks another GPU.
 */
@Tag("gpu")
class CudaForwardGpuTest {
    static final int DEVICE = Integer.getInteger("mergeforge.cuda.device", 0);

    @BeforeEach
    void gpu() {
        Assumptions.assumeTrue(CudaForward.unavailableReason().isEmpty(), () -> "no GPU pass here: " + CudaForward.unavailableReason().orElse(""));
    }

    @Test
    void llamaMistralQwen2AndUntiedLlamaMatchTheCpu(@TempDir Path dir) throws IOException {
        TinyModel[] models = {ForwardPassTest.llama(), ForwardPassTest.mistral(), ForwardPassTest.qwen2()};
        for (int i = 0; i < models.length; i++) {
            Path m = models[i].write(dir.resolve("m" + i), i == 0 ? DType.BF16 : DType.F32);
            CudaForwardEmulatedTest.agree(m, ForwardPassTest.sequences(models[i].vocab(), 7 + i, 9, 5, 13),
                    model -> CudaForward.open(model, DEVICE));
        }
        Path untied = dir.resolve("untied");
        TinyLlama.write(java.nio.file.Files.createDirectories(untied), 2, 4);
        CudaForwardEmulatedTest.agree(untied, ForwardPassTest.sequences(TinyLlama.VOCAB, 10, 16, 16, 16, 16),
                model -> CudaForward.open(model, DEVICE));
    }

    @Test
    void zooActMeanMatchesTheReference() {
        Path zoo = Zoo.dir();
        TokenBlocks blocks = CalibrationData.load(zoo.resolve("data/general_calib_blocks.jsonl"), null, 1, 16, 0);
        ActMeanStats stats = new ActMeanStats();
        Parallel par = new Parallel(2);
        try (LlamaModel model = LlamaModel.open(zoo.resolve("base"), par, false); CudaForward f = CudaForward.open(model, DEVICE)) {
            f.observe(blocks.blocks(), stats);
        } finally {
            par.shutdown();
        }
        Map<String, float[]> got = stats.means();
        try (SafetensorsFile ref = SafetensorsFile.open(zoo.resolve("reference/act_mean_base.safetensors"))) {
            assertEquals(ref.names().size(), got.size());
            for (String n : ref.names()) {
                float[] expect = Zoo.floats(ref.tensor(n));
                for (int j = 0; j < expect.length; j++) assertEquals(expect[j], got.get(n)[j], 1e-5, n + "[" + j + "]");
            }
        }
    }
}
