package dev.mergeforge.run;

import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.linalg.SpdSolverTestAccess;
import dev.mergeforge.run.MergeFixtures.Run;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RegMean on a generated GPT-2 checkpoint, whose Conv1D weights are stored (in, out): every merged
 * tensor against a double-precision reference that forms each Linear W = Vᵀ explicitly and applies
 * docs/data-informed.md's (out, in) formula, W* = [A⁻¹ Σ wᵢG̃ᵢWᵢᵀ]ᵀ, then stores W*ᵀ.
 */
class Conv1dRegMeanMergeTest {
    static final double ALPHA = 0.8;
    static final double[] W = {1.0, 2.0};

    @TempDir Path tmp;

    /** Grams of inputs the test draws itself, [in, in] with in = dim 0 of each Conv1D weight. */
    static Map<String, float[]> grams(Path model, long seed, Map<String, Shape> shapes) {
        Random r = new Random(seed);
        Map<String, float[]> g = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(model.resolve("model.safetensors"))) {
            for (String n : f.names()) {
                TensorView v = f.tensor(n);
                if (v.shape().rank() != 2 || n.contains(".wte.") || n.contains(".wpe.")) continue;
                // Conv1D [in, out] in the layers; an untied lm_head is nn.Linear [vocab, hidden]
                int in = (int) v.shape().dim(n.equals("lm_head.weight") ? 1 : 0), tokens = 2 * in;
                float[] x = new float[tokens * in];
                for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (1 + (i % in) % 3));
                float[] gm = new float[in * in];
                for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
                    double s = 0;
                    for (int t = 0; t < tokens; t++) s += (double) x[t * in + i] * x[t * in + j];
                    gm[i * in + j] = (float) (s / tokens);
                }
                g.put(n, gm);
                shapes.put(n, Shape.of(in, in));
            }
        }
        return g;
    }

    /**
     * The merged stored tensor: W_i = V_iᵀ for a Conv1D (inOut), W_i as stored otherwise; A = Σ w G~;
     * B = Σ w G~ W_iᵀ; W* = (A⁻¹B)ᵀ; returned as stored (V* = W*ᵀ [in, out] for a Conv1D).
     */
    static double[] reference(List<double[]> vs, List<float[]> gs, int in, int out, boolean inOut) {
        double[] a = new double[in * in], b = new double[in * out];
        for (int m = 0; m < vs.size(); m++) {
            double[] w = new double[out * in];
            for (int i = 0; i < in; i++) for (int o = 0; o < out; o++) w[o * in + i] = inOut ? vs.get(m)[i * out + o] : vs.get(m)[o * in + i];
            for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
                // G~ = αG + (1−α)diag(G)
                double g = gs.get(m)[i * in + j] * (i == j ? 1 : ALPHA);
                a[i * in + j] += W[m] * g;
                for (int o = 0; o < out; o++) b[i * out + o] += W[m] * g * w[o * in + j];
            }
        }
        double[] x = SpdSolverTestAccess.gauss(a, in, b, out);   // x = A⁻¹B = W*ᵀ [in, out]
        double[] wStar = new double[out * in];
        for (int i = 0; i < in; i++) for (int o = 0; o < out; o++) wStar[o * in + i] = x[i * out + o];
        if (!inOut) return wStar;
        double[] v = new double[in * out];
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) v[i * out + o] = wStar[o * in + i];
        return v;
    }

    @Test
    void regmeanMergesGpt2Conv1dWeightsAgainstTheReference() throws Exception {
        // untied, so the (out, in) lm_head sits beside the Conv1D weights
        RandomModels.Family fam = RandomModels.family(RandomModels.builder().arch(Arch.GPT2).hidden(32).intermediate(48).layers(3).heads(4)
                .kvHeads(4).vocab(64).maxPositions(64).tieEmbeddings(false).seed(7), 2, 0.02, tmp.resolve("m"));
        Path a = fam.fineTunes().get(0), b = fam.fineTunes().get(1);
        Map<String, Shape> shapes = new LinkedHashMap<>();
        Map<String, float[]> ga = grams(a, 11, shapes), gb = grams(b, 12, shapes);
        TinyLlama.writeTensors(tmp.resolve("ga.safetensors"), ga, shapes, Map.of("stat", "gram"));
        TinyLlama.writeTensors(tmp.resolve("gb.safetensors"), gb, shapes, Map.of("stat", "gram"));
        Path cfg = MergeFixtures.yaml(tmp, "regmean.yml", """
                merge_method: regmean
                models:
                  - model: %s
                    parameters: {weight: 1.0}
                    calibration: {stats: %s}
                  - model: %s
                    parameters: {weight: 2.0}
                    calibration: {stats: %s}
                parameters: {alpha: %s}
                dtype: float32
                """.formatted(a, tmp.resolve("ga.safetensors"), b, tmp.resolve("gb.safetensors"), ALPHA));
        Run r = MergeFixtures.cli("merge", cfg.toString(), tmp.resolve("out").toString(), "--backend", "java", "-q");
        assertEquals(0, r.exit(), r.err());
        Path out = tmp.resolve("out");
        int solved = 0;
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            for (String n : f.names()) {
                double[] got = MergeFixtures.values(f.tensor(n)), va = MergeFixtures.values(a, n), vb = MergeFixtures.values(b, n);
                double[] expect;
                if (ga.containsKey(n)) {
                    long[] d = f.tensor(n).shape().dims();
                    boolean inOut = !n.equals("lm_head.weight");
                    expect = reference(List.of(va, vb), List.of(ga.get(n), gb.get(n)), (int) d[inOut ? 0 : 1], (int) d[inOut ? 1 : 0], inOut);
                    double avgDiff = 0;
                    for (int i = 0; i < got.length; i++) avgDiff = Math.max(avgDiff, Math.abs(got[i] - (W[0] * va[i] + W[1] * vb[i]) / 3));
                    assertTrue(avgDiff > 1e-4, n + ": the Grams changed the result (max difference from the average " + avgDiff + ")");
                    solved++;
                } else {
                    expect = new double[got.length];
                    for (int i = 0; i < got.length; i++) expect[i] = (W[0] * va[i] + W[1] * vb[i]) / 3;
                }
                for (int i = 0; i < got.length; i++) assertEquals(expect[i], got[i], 2e-5 * (1 + Math.abs(expect[i])), n + "[" + i + "]");
            }
        }
        // c_attn, attn.c_proj, c_fc, mlp.c_proj in each of the 3 layers, and lm_head
        assertEquals(13, solved);
    }

    @Test
    void aGramSizedForTheOutputAxisNamesTheStoredLayout() throws Exception {
        RandomModels.Family fam = MergeFixtures.family(Arch.GPT2, DType.F32, 1, 1, tmp.resolve("m"));
        Path a = fam.fineTunes().getFirst();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        Map<String, float[]> g = grams(a, 11, shapes);
        // mlp.c_fc is stored [32, 48]: a [48, 48] Gram belongs to a model that stores it (out, in)
        String fc = "transformer.h.0.mlp.c_fc.weight";
        g.put(fc, new float[48 * 48]);
        shapes.put(fc, Shape.of(48, 48));
        Path gf = tmp.resolve("g.safetensors");
        TinyLlama.writeTensors(gf, g, shapes, Map.of("stat", "gram"));
        Path cfg = MergeFixtures.yaml(tmp, "bad.yml", """
                merge_method: regmean
                models:
                  - model: %s
                  - model: %s
                calibration: {stats: %s}
                dtype: float32
                """.formatted(fam.base(), a, gf));
        Run r = MergeFixtures.cli("merge", cfg.toString(), tmp.resolve("out").toString(), "--backend", "java");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("Gram '" + fc + "'") && r.err().contains("stored (in, out), so it needs [32, 32]"), r.err());
        assertTrue(r.err().lines().filter(l -> !l.isBlank()).count() == 1, r.err());
        assertTrue(Files.notExists(tmp.resolve("out/model.safetensors")));
    }
}
