package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.arch.Architecture;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.model.ArchFixtures;
import dev.mergeforge.model.Zoo;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.run.MergeFixtures.Run;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `calibrate` (act_mean and gram), `eval`, a merge with {@code aim: {calibration: ...}} and a
 * RegMean merge, end to end through the CLI, for every family with a forward pass, on
 * transformers' tiny checkpoints: the calibrated statistic is transformers' own, and the AIM
 * merge is checked tensor by tensor against a relaxation computed here from that reference.
 */
class FamilyCommandsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path tmp;

    static String[] families() { return ArchFixtures.FAMILIES; }

    @ParameterizedTest
    @MethodSource("families")
    void calibrateEvalAimAndRegmeanRunEndToEnd(String family) throws Exception {
        Path fixture = ArchFixtures.dir(family);
        Path base = model(fixture, tmp.resolve("base"), 0), ft = model(fixture, tmp.resolve("ft"), 0.05);
        Path ids = tmp.resolve("ids.jsonl"), ref = fixture.resolve("reference.safetensors");
        try (SafetensorsFile r = SafetensorsFile.open(ref)) {
            StringBuilder jsonl = new StringBuilder();
            for (int[] s : ArchFixtures.inputIds(r)) jsonl.append(JSON.writeValueAsString(Map.of("input_ids", s))).append('\n');
            Files.writeString(ids, jsonl);
        }

        // calibrate: transformers' act_mean on the same two sequences
        Path act = tmp.resolve("act.safetensors");
        Run c = MergeFixtures.cli("calibrate", base.toString(), "--data", ids.toString(), "--samples", "2", "--seq-len", "24",
                "--no-cache", "--threads", "2", "-o", act.toString());
        assertEquals(0, c.exit(), c.err());
        try (SafetensorsFile got = SafetensorsFile.open(act); SafetensorsFile r = SafetensorsFile.open(ref)) {
            int n = 0;
            for (String name : r.names()) {
                if (!name.startsWith("act_mean.")) continue;
                float[] e = Zoo.floats(r.tensor(name)), g = Zoo.floats(got.tensor(name.substring(9)));
                for (int j = 0; j < e.length; j++) assertEquals(e[j], g[j], 1e-5 * Math.max(1e-3, Math.abs(e[j])) + 1e-7, name);
                n++;
            }
            assertEquals(n, got.names().size(), family + ": one statistic per reference module");
        }

        // calibrate --stat gram: one symmetric Gram per distinct Linear input, named by the descriptor
        Path gram = tmp.resolve("gram.safetensors");
        c = MergeFixtures.cli("calibrate", base.toString(), "--stat", "gram", "--data", ids.toString(), "--samples", "2", "--seq-len", "24",
                "--no-cache", "--threads", "2", "-o", gram.toString());
        assertEquals(0, c.exit(), c.err());
        Architecture a = Architectures.find(JSON.readTree(base.resolve("config.json").toFile())).orElseThrow();
        try (SafetensorsFile g = SafetensorsFile.open(gram)) {
            String q = a.layerName(0, a.layer().stream().filter(s -> !s.input().isEmpty()).findFirst().orElseThrow(), -1);
            float[] m = Zoo.floats(g.tensor(q));
            int w = (int) Math.sqrt(m.length);
            for (int i = 0; i < w; i++) {
                assertTrue(m[i * w + i] > 0, q + " diagonal");
                for (int j = 0; j < i; j++) assertEquals(m[i * w + j], m[j * w + i], 0f, q + " symmetric");
            }
        }

        // eval: a finite loss through the model's tokenizer
        Path text = Files.writeString(tmp.resolve("docs.txt"), "hello world, merge me\nanother line of text\n");
        c = MergeFixtures.cli("eval", base.toString(), "--text", text.toString(), "--json", "--threads", "2");
        assertEquals(0, c.exit(), c.err());
        double nll = JSON.readTree(c.out()).at("/text/mean_nll").asDouble(Double.NaN);
        assertTrue(nll > 0 && Double.isFinite(nll), family + " mean NLL " + nll);

        // task arithmetic + AIM calibrated in the merge: ft's delta relaxed by transformers' statistic
        double omega = 0.3;
        Path cfg = MergeFixtures.yaml(tmp, "aim.yml", """
                merge_method: task_arithmetic
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 1.0}
                dtype: float32
                aim: {omega: %s, calibration: {data: %s, samples: 2, seq_len: 24}}
                """.formatted(base, ft, omega, ids));
        Run m = MergeFixtures.cli("merge", cfg.toString(), tmp.resolve("aim").toString(), "-q");
        assertEquals(0, m.exit(), m.err());
        checkRelaxed(a, base, ft, tmp.resolve("aim"), ref, omega);

        // RegMean with Grams calibrated for each model
        Path rcfg = MergeFixtures.yaml(tmp, "regmean.yml", """
                merge_method: regmean
                models:
                  - model: %1$s
                    parameters: {weight: 1.0}
                  - model: %2$s
                    parameters: {weight: 1.0}
                calibration: {data: %3$s, samples: 2, seq_len: 24}
                dtype: float32
                """.formatted(base, ft, ids));
        m = MergeFixtures.cli("merge", rcfg.toString(), tmp.resolve("regmean").toString(), "-q");
        assertEquals(0, m.exit(), m.err());
        // the same Grams by `calibrate` (base's above, ft's now): the merge against a float64 reference
        Path ftGram = tmp.resolve("ft-gram.safetensors");
        c = MergeFixtures.cli("calibrate", ft.toString(), "--stat", "gram", "--data", ids.toString(), "--samples", "2", "--seq-len", "24",
                "--no-cache", "--threads", "2", "-o", ftGram.toString());
        assertEquals(0, c.exit(), c.err());
        checkRegMean(a, base, ft, tmp.resolve("regmean"), gram, ftGram);
    }

    /**
     * Every tensor of the RegMean merge (weights 1, 1; α = 0.9): where both Gram files hold a non-zero
     * Gram for it (own name or {@code shared_inputs}), W* = [A⁻¹ Σ G̃ᵢWᵢᵀ]ᵀ in the (out, in) convention,
     * a Conv1D weight stored (in, out) being read as W = Vᵀ and compared as W*ᵀ; elsewhere the mean.
     */
    private static void checkRegMean(Architecture a, Path base, Path ft, Path out, Path gramBase, Path gramFt) throws IOException {
        try (SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(base.resolve("model.safetensors"));
             SafetensorsFile f = SafetensorsFile.open(ft.resolve("model.safetensors"));
             SafetensorsFile g0 = SafetensorsFile.open(gramBase); SafetensorsFile g1 = SafetensorsFile.open(gramFt)) {
            assertEquals(b.names(), o.names());
            String sharedJson = g0.metadata().get("shared_inputs");
            JsonNode shared = sharedJson == null ? JSON.createObjectNode() : JSON.readTree(sharedJson);
            int solved = 0;
            for (String n : b.names()) {
                float[] got = Zoo.floats(o.tensor(n)), w0 = Zoo.floats(b.tensor(n)), w1 = Zoo.floats(f.tensor(n));
                long[] d = b.tensor(n).shape().dims();
                String gn = g0.names().contains(n) ? n : shared.path(n).asText(null);
                float[] gA = d.length == 2 && gn != null && g0.names().contains(gn) ? Zoo.floats(g0.tensor(gn)) : null;
                float[] gB = gA == null ? null : Zoo.floats(g1.tensor(gn));
                double[] expect;
                if (gA != null && !zeroDiagonal(gA) && !zeroDiagonal(gB)) {
                    boolean inOut = a.storedInOut(n);
                    int rows = (int) d[inOut ? 1 : 0], in = (int) d[inOut ? 0 : 1];
                    double[] x = solve(List.of(linear(w0, inOut, rows, in), linear(w1, inOut, rows, in)), List.of(gA, gB), rows, in, 0.9);
                    expect = new double[got.length];
                    // x = A⁻¹B = W*ᵀ [in, out]: stored as is for (in, out), transposed for (out, in)
                    for (int r = 0; r < rows; r++) for (int j = 0; j < in; j++) expect[inOut ? j * rows + r : r * in + j] = x[j * rows + r];
                    solved++;
                } else {
                    expect = new double[got.length];
                    for (int i = 0; i < got.length; i++) expect[i] = ((double) w0[i] + w1[i]) / 2;
                }
                double scale = 0;
                for (double e : expect) scale = Math.max(scale, Math.abs(e));
                for (int i = 0; i < got.length; i++) assertEquals(expect[i], got[i], 1e-4 * scale + 1e-7, n + "[" + i + "]");
            }
            assertTrue(solved > 0, "some tensors were solved with their Grams");
        }
    }

    /** W [out, in] from a stored weight: itself, or the transpose of a Conv1D's V [in, out]. */
    private static double[] linear(float[] stored, boolean inOut, int rows, int in) {
        double[] w = new double[rows * in];
        for (int r = 0; r < rows; r++) for (int j = 0; j < in; j++) w[r * in + j] = inOut ? stored[j * rows + r] : stored[r * in + j];
        return w;
    }

    /** A⁻¹B with A = Σ G̃ᵢ, B = Σ G̃ᵢWᵢᵀ, G̃ = αG + (1−α)diag(G), by Gaussian elimination in double: [in, out]. */
    private static double[] solve(List<double[]> ws, List<float[]> gs, int rows, int in, double alpha) {
        double[] am = new double[in * in], bm = new double[in * rows];
        for (int m = 0; m < ws.size(); m++) for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
            double g = gs.get(m)[i * in + j] * (i == j ? 1 : alpha);
            am[i * in + j] += g;
            for (int r = 0; r < rows; r++) bm[i * rows + r] += g * ws.get(m)[r * in + j];
        }
        return dev.mergeforge.linalg.SpdSolverTestAccess.gauss(am, in, bm, rows);
    }

    private static boolean zeroDiagonal(float[] g) {
        int n = (int) Math.round(Math.sqrt(g.length));
        for (int i = 0; i < n; i++) if (g[i * n + i] != 0f) return false;
        return true;
    }

    /** Every tensor of the AIM merge: base + δ·(1 − (1 − ω)·s/max s) along its input axis where it has a statistic, base + δ elsewhere. */
    private static void checkRelaxed(Architecture a, Path base, Path ft, Path out, Path ref, double omega) throws IOException {
        JsonNode cfg = JSON.readTree(base.resolve("config.json").toFile());
        boolean tied = a.tiedHead(cfg);
        try (SafetensorsFile o = SafetensorsFile.open(out.resolve("model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(base.resolve("model.safetensors"));
             SafetensorsFile f = SafetensorsFile.open(ft.resolve("model.safetensors"));
             SafetensorsFile r = SafetensorsFile.open(ref)) {
            int relaxed = 0;
            for (String n : b.names()) {
                float[] bv = Zoo.floats(b.tensor(n)), fv = Zoo.floats(f.tensor(n)), ov = Zoo.floats(o.tensor(n));
                long[] dims = b.tensor(n).shape().dims();
                boolean has = r.names().contains("act_mean." + n) && !n.endsWith(".bias") && !a.isEmbedding(n) && !(tied && a.isHead(n));
                float[] s = has ? Zoo.floats(r.tensor("act_mean." + n)) : null;
                float max = 0;
                if (has) for (float x : s) max = Math.max(max, x);
                int cols = dims.length == 2 ? (int) dims[1] : 1;
                for (int i = 0; i < bv.length; i++) {
                    double keep = 1;
                    if (has) {
                        // the input channel: the column of an (out, in) weight, the row of a Conv1D (in, out) one
                        int ch = dims.length < 2 ? i : a.storedInOut(n) ? i / cols : i % cols;
                        keep = 1 - (1 - omega) * (s[ch] / max);
                    }
                    double expect = bv[i] + ((double) fv[i] - bv[i]) * keep;
                    assertEquals(expect, ov[i], 2e-6 * Math.max(1, Math.abs(expect)), n + "[" + i + "]");
                }
                if (has) relaxed++;
            }
            assertTrue(relaxed > 0, "some tensors were relaxed");
        }
    }

    private static Path model(Path fixture, Path dir, double eps) throws IOException { return ArchFixtures.copy(fixture, dir, eps); }
}
