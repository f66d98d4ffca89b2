package dev.mergeforge.model.cuda;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.cuda.EmulatedDevice;
import dev.mergeforge.calib.ActMeanStats;
import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.model.ActivationObserver;
import dev.mergeforge.model.ForwardPassTest;
import dev.mergeforge.model.LlamaModel;
import dev.mergeforge.model.ModelConfig;
import dev.mergeforge.model.RopeScaling;
import dev.mergeforge.model.TinyModel;
import dev.mergeforge.model.Zoo;
import dev.mergeforge.calib.CalibrationData;
import dev.mergeforge.calib.GramCalibrator;
import dev.mergeforge.calib.TokenBlocks;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.eval.Evaluator;
import dev.mergeforge.eval.TextLoss;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole CUDA forward pass (CudaForward, ForwardPlan, DeviceObservation, the pool and the real
 * kernels/calib.cu) on the host emulator with the GEMM done in Java over its memory, against the
 * CPU forward pass: act_mean statistics and logits to 1e-4 relative / 1e-5 absolute on tiny random
 * models of each supported architecture, hidden states resident and streamed; and the zoo's
 * reference statistic to 1e-5.
 */
class CudaForwardEmulatedTest {
    static final Parallel PAR = new Parallel(2);
    /** Far more than the tiny models need: everything resident, one chunk. */
    static final long LARGE = 1L << 30;

    @AfterAll
    static void stop() { PAR.shutdown(); }

    @BeforeEach
    void emulator() {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
    }

    static CudaForward emulated(LlamaModel model, long budget) {
        EmulatedDevice dev = new EmulatedDevice();
        return new CudaForward(model, dev, new HostGemm(dev), budget, true);
    }

    static void near(double expect, double got, String what) {
        assertEquals(expect, got, 1e-5 + 1e-4 * Math.abs(expect), what);
    }

    private static void agree(Path dir, int[][] seqs, long budget, boolean expectResident) {
        agree(dir, seqs, model -> {
            assertEquals(expectResident, ForwardPlan.make(model.config(), seqs, budget, false).resident());
            return emulated(model, budget);
        });
    }

    /** The CPU and a device pass agree on every act_mean vector, the final hidden states and the logits. */
    static void agree(Path dir, int[][] seqs, Function<LlamaModel, CudaForward> open) {
        Parallel par = new Parallel(2);
        try (LlamaModel model = LlamaModel.open(dir, par, false)) {
            ActMeanStats cpuStats = new ActMeanStats(), gpuStats = new ActMeanStats();
            float[][] cpuH = model.hiddenStates(seqs, cpuStats);
            float[][] cpuLogits = model.logits(seqs);
            float[][] gpuH, gpuLogits;
            try (CudaForward gpu = open.apply(model)) {
                gpuH = gpu.hiddenStates(seqs, gpuStats);
                gpuLogits = gpu.logits(seqs);
            }
            Map<String, float[]> want = cpuStats.means(), got = gpuStats.means();
            assertEquals(want.keySet(), got.keySet());
            for (String n : want.keySet()) {
                assertEquals(cpuStats.tokens(n), gpuStats.tokens(n), n + " tokens");
                for (int j = 0; j < want.get(n).length; j++) near(want.get(n)[j], got.get(n)[j], n + "[" + j + "]");
            }
            for (int b = 0; b < seqs.length; b++) {
                assertEquals(cpuH[b].length, gpuH[b].length);
                for (int i = 0; i < cpuH[b].length; i++) near(cpuH[b][i], gpuH[b][i], "hidden state " + b + "/" + i);
                assertEquals(cpuLogits[b].length, gpuLogits[b].length);
                for (int i = 0; i < cpuLogits[b].length; i++) near(cpuLogits[b][i], gpuLogits[b][i], "logit " + b + "/" + i);
            }
        } finally {
            par.shutdown();
        }
    }

    private static Path write(TinyModel m, Path dir, DType dtype) throws IOException { return m.write(dir, dtype); }

    @Test
    void llamaWithGqaLlama3RopeTiedBf16(@TempDir Path dir) throws IOException {
        TinyModel m = ForwardPassTest.llama();
        agree(write(m, dir, DType.BF16), ForwardPassTest.sequences(m.vocab(), 7, 9, 5, 13), LARGE, true);
    }

    @Test
    void mistralWithSlidingWindowAndLinearRope(@TempDir Path dir) throws IOException {
        TinyModel m = ForwardPassTest.mistral();
        agree(write(m, dir, DType.F32), ForwardPassTest.sequences(m.vocab(), 8, 9, 5, 13), LARGE, true);
    }

    @Test
    void qwen2WithBiases(@TempDir Path dir) throws IOException {
        TinyModel m = ForwardPassTest.qwen2();
        agree(write(m, dir, DType.F32), ForwardPassTest.sequences(m.vocab(), 9, 9, 5, 13), LARGE, true);
    }

    @Test
    void untiedLlamaWithGqa(@TempDir Path dir) {
        TinyLlama.write(dir, 2, 4);
        agree(dir, ForwardPassTest.sequences(TinyLlama.VOCAB, 10, 16, 16, 16, 16), LARGE, true);
    }

    @Test
    void hiddenStatesStreamedInChunksWhenTheyDoNotFit(@TempDir Path dir) throws IOException {
        TinyModel m = ForwardPassTest.qwen2();
        write(m, dir, DType.F32);
        int[][] seqs = ForwardPassTest.sequences(m.vocab(), 11, 9, 5, 13, 4, 8, 12, 7, 10, 6, 11);
        try (LlamaModel model = LlamaModel.open(dir, PAR, false)) {
            // the smallest budget that holds the longest sequence's working rows with logits
            long budget = ForwardPlan.layerBytes(model.config());
            while (true) {
                try {
                    ForwardPlan.make(model.config(), seqs, budget, true);
                    break;
                } catch (MergeforgeException e) {
                    budget += 64;
                }
            }
            for (boolean logits : new boolean[] {false, true}) {
                ForwardPlan plan = ForwardPlan.make(model.config(), seqs, budget, logits);
                assertTrue(!plan.resident() && plan.chunks().size() > 2, plan.toString());
            }
            agree(dir, seqs, budget, false);
        }
    }

    @Test
    void aSequenceThatCannotFitIsRefusedNamingTheBudgetAndTheFix(@TempDir Path dir) throws IOException {
        TinyModel m = ForwardPassTest.qwen2();
        write(m, dir, DType.F32);
        try (LlamaModel model = LlamaModel.open(dir, PAR, false)) {
            int[][] seqs = ForwardPassTest.sequences(m.vocab(), 3, 9, 13);
            MergeforgeException e = assertThrows(MergeforgeException.class,
                    () -> ForwardPlan.make(model.config(), seqs, ForwardPlan.layerBytes(model.config()), false));
            assertTrue(e.getMessage().contains("a sequence of 13 tokens does not fit") && e.getMessage().contains("--device cpu"), e.getMessage());
        }
    }

    @Test
    void headDimBeyondTheAttentionKernelIsAConfigError() {
        ModelConfig wide = new ModelConfig("llama", 16, 24, 1, 1, 1, 300, 20, 1e-5, 1e4, RopeScaling.NONE, false, 0, 1, 2);
        ConfigException e = assertThrows(ConfigException.class, () -> CudaForward.checkSupported(wide, "m"));
        assertTrue(e.getMessage().startsWith("m: head_dim 300") && e.getMessage().contains("--device cpu"), e.getMessage());
        CudaForward.checkSupported(new ModelConfig("llama", 16, 24, 1, 1, 1, 256, 20, 1e-5, 1e4, RopeScaling.NONE, false, 0, 1, 2), "m");
    }

    @Test
    void anyObserverGetsTheRowsOfEverySequence(@TempDir Path dir) throws IOException {
        TinyModel m = ForwardPassTest.mistral();
        write(m, dir, DType.F32);
        int[][] seqs = ForwardPassTest.sequences(m.vocab(), 12, 6, 3, 7);
        try (LlamaModel model = LlamaModel.open(dir, PAR, false)) {
            SumObserver cpu = new SumObserver(), gpu = new SumObserver();
            model.hiddenStates(seqs, cpu);
            try (CudaForward f = emulated(model, LARGE)) {
                f.observe(seqs, gpu);
            }
            assertEquals(cpu.calls, gpu.calls);
            assertEquals(cpu.sums.keySet(), gpu.sums.keySet());
            for (String n : cpu.sums.keySet()) {
                double[] a = cpu.sums.get(n), b = gpu.sums.get(n);
                for (int j = 0; j < a.length; j++) near(a[j], b[j], n + "[" + j + "]");
            }
        }
    }

    /** Σ_t x[t, j] per module (signed, so it is not the AbsSumObserver path) and the call count. */
    static final class SumObserver implements ActivationObserver {
        final Map<String, double[]> sums = new TreeMap<>();
        int calls;

        @Override
        public void accept(String name, float[] x, int offset, int tokens, int width) {
            calls++;
            double[] s = sums.computeIfAbsent(name, k -> new double[width]);
            for (int t = 0; t < tokens; t++) for (int j = 0; j < width; j++) s[j] += x[offset + t * width + j];
        }
    }

    @Test
    void gramStatisticFromTheDevicePassMatchesTheCpu(@TempDir Path dir) throws IOException {
        Path m = dir.resolve("m");
        TinyLlama.write(Files.createDirectories(m), 2, 5);
        TokenBlocks blocks = new TokenBlocks(ForwardPassTest.sequences(TinyLlama.VOCAB, 13, 8, 8, 8), 8, "test");
        Path cpu = dir.resolve("cpu.safetensors"), gpu = dir.resolve("gpu.safetensors");
        try (LlamaModel model = LlamaModel.open(m, PAR, false); CudaForward f = emulated(model, LARGE)) {
            GramCalibrator.write(model, blocks, cpu);
            GramCalibrator.write(model, f, blocks, gpu);
        }
        try (SafetensorsFile a = SafetensorsFile.open(cpu); SafetensorsFile b = SafetensorsFile.open(gpu)) {
            assertEquals(a.names(), b.names());
            for (String n : a.names()) {
                float[] x = Zoo.floats(a.tensor(n)), y = Zoo.floats(b.tensor(n));
                for (int i = 0; i < x.length; i++) near(x[i], y[i], n + "[" + i + "]");
            }
        }
    }

    @Test
    void evalTextLossFromTheDevicePassMatchesTheCpu() {
        Path zoo = Zoo.dir();
        List<String> docs = Evaluator.readDocuments(zoo.resolve("data/general_eval.txt")).subList(0, 6);
        try (LlamaModel model = LlamaModel.open(zoo.resolve("base"), PAR, false); TextTokenizer tok = TextTokenizer.open(zoo.resolve("base"));
             CudaForward f = emulated(model, LARGE)) {
            TextLoss cpu = Evaluator.textLoss(model, tok, docs, 64), gpu = Evaluator.textLoss(model, f, tok, docs, 64);
            assertEquals(cpu.tokens(), gpu.tokens());
            near(cpu.meanNll(), gpu.meanNll(), "mean NLL");
        }
    }

    @Test
    void zooActMeanMatchesTheReference() {
        Path zoo = Zoo.dir();
        TokenBlocks blocks = CalibrationData.load(zoo.resolve("data/general_calib_blocks.jsonl"), null, 1, 16, 0);
        ActMeanStats stats = new ActMeanStats();
        try (LlamaModel model = LlamaModel.open(zoo.resolve("base"), PAR, false); CudaForward f = emulated(model, LARGE)) {
            f.observe(blocks.blocks(), stats);
        }
        Map<String, float[]> got = stats.means();
        try (SafetensorsFile ref = SafetensorsFile.open(zoo.resolve("reference/act_mean_base.safetensors"))) {
            assertEquals(ref.names().stream().sorted().toList(), got.keySet().stream().toList());
            for (String n : ref.names()) {
                float[] expect = Zoo.floats(ref.tensor(n));
                for (int j = 0; j < expect.length; j++) assertEquals(expect[j], got.get(n)[j], 1e-5, n + "[" + j + "]");
            }
        }
        assertTrue(Files.isDirectory(zoo));
    }
}
