package dev.mergeforge.calib;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.cli.Main;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.model.LlamaModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static dev.mergeforge.calib.TinyLlama.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Gram statistic equals XᵀX/tokens of every Linear's input from a Llama forward pass written here in double. */
class GramStatsTest {
    @TempDir Path tmp;

    static int[][] blocks(int n, int len, long seed) {
        Random r = new Random(seed);
        int[][] b = new int[n][len];
        for (int[] row : b) for (int t = 0; t < len; t++) row[t] = t == 0 ? 1 : r.nextInt(VOCAB);
        return b;
    }

    /** Reference forward (HF Llama: RMSNorm, rotate-half RoPE, causal GQA, SwiGLU) accumulating Σ XᵀX per stored name. */
    static Map<String, double[]> referenceGrams(Map<String, float[]> w, int layers, int[][] blocks) {
        Map<String, double[]> g = new LinkedHashMap<>();
        int qd = HEADS * HEAD_DIM, kvd = KV_HEADS * HEAD_DIM;
        for (int[] ids : blocks) {
            int n = ids.length;
            double[][] h = new double[n][];
            for (int t = 0; t < n; t++) h[t] = row(w.get("model.embed_tokens.weight"), ids[t], HIDDEN);
            for (int l = 0; l < layers; l++) {
                String p = "model.layers." + l + ".";
                double[][] xn = norm(h, w.get(p + "input_layernorm.weight"));
                acc(g, p + "self_attn.q_proj.weight", xn);
                double[][] q = lin(xn, w.get(p + "self_attn.q_proj.weight"), qd), k = lin(xn, w.get(p + "self_attn.k_proj.weight"), kvd);
                double[][] v = lin(xn, w.get(p + "self_attn.v_proj.weight"), kvd);
                for (int t = 0; t < n; t++) { rope(q[t], HEADS, t); rope(k[t], KV_HEADS, t); }
                double[][] att = new double[n][qd];
                for (int hd = 0; hd < HEADS; hd++) {
                    int kh = hd / (HEADS / KV_HEADS);
                    for (int t = 0; t < n; t++) {
                        double[] s = new double[t + 1];
                        double max = Double.NEGATIVE_INFINITY, sum = 0;
                        for (int j = 0; j <= t; j++) {
                            for (int d = 0; d < HEAD_DIM; d++) s[j] += q[t][hd * HEAD_DIM + d] * k[j][kh * HEAD_DIM + d];
                            s[j] /= Math.sqrt(HEAD_DIM);
                            max = Math.max(max, s[j]);
                        }
                        for (int j = 0; j <= t; j++) { s[j] = Math.exp(s[j] - max); sum += s[j]; }
                        for (int j = 0; j <= t; j++) for (int d = 0; d < HEAD_DIM; d++) att[t][hd * HEAD_DIM + d] += s[j] / sum * v[j][kh * HEAD_DIM + d];
                    }
                }
                acc(g, p + "self_attn.o_proj.weight", att);
                add(h, lin(att, w.get(p + "self_attn.o_proj.weight"), HIDDEN));
                double[][] x2 = norm(h, w.get(p + "post_attention_layernorm.weight"));
                acc(g, p + "mlp.gate_proj.weight", x2);
                double[][] gate = lin(x2, w.get(p + "mlp.gate_proj.weight"), INTER), up = lin(x2, w.get(p + "mlp.up_proj.weight"), INTER);
                for (int t = 0; t < n; t++) for (int i = 0; i < INTER; i++) gate[t][i] = gate[t][i] / (1 + Math.exp(-gate[t][i])) * up[t][i];
                acc(g, p + "mlp.down_proj.weight", gate);
                add(h, lin(gate, w.get(p + "mlp.down_proj.weight"), HIDDEN));
            }
            acc(g, "lm_head.weight", norm(h, w.get("model.norm.weight")));
        }
        return g;
    }

    static double[] row(float[] m, int r, int width) {
        double[] out = new double[width];
        for (int j = 0; j < width; j++) out[j] = m[r * width + j];
        return out;
    }

    static double[][] norm(double[][] h, float[] gain) {
        double[][] out = new double[h.length][];
        for (int t = 0; t < h.length; t++) {
            double ss = 0;
            for (double x : h[t]) ss += x * x;
            double r = 1 / Math.sqrt(ss / h[t].length + 1e-5);
            out[t] = new double[h[t].length];
            for (int j = 0; j < h[t].length; j++) out[t][j] = h[t][j] * r * gain[j];
        }
        return out;
    }

    static double[][] lin(double[][] x, float[] w, int out) {
        int in = x[0].length;
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++) for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) y[t][o] += x[t][i] * w[o * in + i];
        return y;
    }

    static void add(double[][] h, double[][] d) {
        for (int t = 0; t < h.length; t++) for (int j = 0; j < h[t].length; j++) h[t][j] += d[t][j];
    }

    /** x[h·d + i], x[h·d + i + d/2] rotated by pos·θ^(−2i/d). */
    static void rope(double[] x, int heads, int pos) {
        int half = HEAD_DIM / 2;
        for (int hd = 0; hd < heads; hd++) for (int i = 0; i < half; i++) {
            double a = pos * Math.pow(10000.0, -2.0 * i / HEAD_DIM);
            int o = hd * HEAD_DIM;
            double x1 = x[o + i], x2 = x[o + i + half];
            x[o + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
            x[o + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
        }
    }

    static void acc(Map<String, double[]> g, String name, double[][] x) {
        int w = x[0].length;
        double[] s = g.computeIfAbsent(name, k -> new double[w * w + 1]);
        for (double[] r : x) for (int i = 0; i < w; i++) for (int j = 0; j < w; j++) s[i * w + j] += r[i] * r[j];
        s[w * w] += x.length; // token count
    }

    static float[] floats(TensorView v) { return v.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)); }

    @Test
    void gramEqualsXtXOfAReferenceForward() throws Exception {
        int layers = 2;
        Path dir = Files.createDirectories(tmp.resolve("m"));
        Map<String, float[]> w = TinyLlama.write(dir, layers, 11);
        int[][] b = blocks(3, 9, 5);
        Path out1 = tmp.resolve("g1.safetensors"), out2 = tmp.resolve("g2.safetensors");
        for (int threads : new int[] {1, 2}) {
            Parallel par = new Parallel(threads);
            try (LlamaModel m = LlamaModel.open(dir, par, false)) {
                GramCalibrator.write(m, new TokenBlocks(b, 9, "test"), threads == 1 ? out1 : out2);
            } finally {
                par.shutdown();
            }
        }
        Map<String, double[]> ref = referenceGrams(w, layers, b);
        try (SafetensorsFile f = SafetensorsFile.open(out1); SafetensorsFile f2 = SafetensorsFile.open(out2)) {
            assertEquals(ref.keySet(), new java.util.HashSet<>(f.names()));
            for (var e : ref.entrySet()) {
                double[] s = e.getValue();
                int width = (int) Math.round(Math.sqrt(s.length - 1));
                float[] got = floats(f.tensor(e.getKey()));
                assertArrayEquals(got, floats(f2.tensor(e.getKey())), "1 and 2 threads differ for " + e.getKey());
                assertEquals(width * width, got.length);
                for (int i = 0; i < got.length; i++) {
                    double expect = s[i] / s[width * width];
                    assertEquals(expect, got[i], 1e-4 * (1 + Math.abs(expect)), e.getKey() + "[" + i / width + "][" + i % width + "]");
                }
            }
            Map<String, String> meta = f.metadata();
            assertEquals("gram", meta.get("stat"));
            assertEquals("27", meta.get("tokens"));
            @SuppressWarnings("unchecked")
            Map<String, String> shared = new ObjectMapper().readValue(meta.get("shared_inputs"), Map.class);
            assertEquals("model.layers.1.self_attn.q_proj.weight", shared.get("model.layers.1.self_attn.v_proj.weight"));
            assertEquals("model.layers.0.mlp.gate_proj.weight", shared.get("model.layers.0.mlp.up_proj.weight"));
            assertEquals(3 * layers, shared.size());
        }
    }

    @Test
    void calibrateCommandWritesTheGramFile() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("m"));
        TinyLlama.write(dir, 1, 3);
        Path data = tmp.resolve("d.jsonl");
        int[][] b = blocks(2, 8, 9);
        StringBuilder sb = new StringBuilder();
        for (int[] row : b) sb.append("{\"input_ids\": ").append(java.util.Arrays.toString(row)).append("}\n");
        Files.writeString(data, sb);
        Path out = tmp.resolve("gram.safetensors");
        StringWriter err = new StringWriter();
        var cl = Main.commandLine();
        cl.setErr(new PrintWriter(err));
        int rc = cl.execute("calibrate", dir.toString(), "--stat", "gram", "--data", data.toString(), "--no-cache", "--threads", "1", "-o", out.toString());
        assertEquals(0, rc, err.toString());
        Map<String, double[]> ref = referenceGrams(TinyLlama.write(Files.createDirectories(tmp.resolve("again")), 1, 3), 1, b);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals("16", f.metadata().get("tokens"));
            double[] s = ref.get("model.layers.0.mlp.down_proj.weight");
            float[] got = floats(f.tensor("model.layers.0.mlp.down_proj.weight"));
            for (int i = 0; i < got.length; i++) assertEquals(s[i] / 16, got[i], 1e-4 * (1 + Math.abs(s[i] / 16)));
        }
        rc = cl.execute("calibrate", dir.toString(), "--stat", "fisher", "-o", out.toString());
        assertEquals(2, rc);
        assertTrue(err.toString().contains("valid: act_mean, gram"), err.toString());
    }
}
