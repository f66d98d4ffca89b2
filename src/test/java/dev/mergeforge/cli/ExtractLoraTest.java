package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `mergeforge extract-lora` end to end: extract an adapter from a fine-tune, apply it to the base
 * with a merge, and compare with the fine-tune: exact for a delta of rank ≤ r, within a whisker of
 * the Eckart–Young optimum (computed here by an independent Jacobi eigensolver) for a full-rank one.
 */
class ExtractLoraTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final String Q = "model.layers.0.self_attn.q_proj.weight", V = "model.layers.1.self_attn.v_proj.weight",
            NORM = "model.layers.0.input_layernorm.weight", EMB = "model.embed_tokens.weight";
    @TempDir static Path root;
    static Path base, ft;
    @TempDir Path dir;

    /** A float32 Llama (hidden 32) and a fine-tune: rank-3 delta on Q, full-rank delta on V, changed norm and embedding. */
    @BeforeAll
    static void models() throws IOException {
        base = RandomModels.builder().arch(Arch.LLAMA).hidden(32).intermediate(40).layers(2).heads(4).kvHeads(4).vocab(24)
                .maxPositions(32).dtype(DType.F32).seed(21).write(root.resolve("base"));
        Random r = new Random(5);
        Map<String, double[]> delta = new HashMap<>();
        double[] q = new double[32 * 32];
        for (int c = 0; c < 3; c++) {
            double[] u = gauss(r, 32), v = gauss(r, 32);
            for (int i = 0; i < 32; i++) for (int j = 0; j < 32; j++) q[i * 32 + j] += 0.05 * u[i] * v[j];
        }
        delta.put(Q, q);
        double[] vd = gauss(r, 32 * 32);
        for (int i = 0; i < vd.length; i++) vd[i] *= 0.01;
        delta.put(V, vd);
        double[] nd = gauss(r, 32), ed = gauss(r, 24 * 32);
        for (int i = 0; i < ed.length; i++) ed[i] *= 0.01;
        delta.put(NORM, nd);
        delta.put(EMB, ed);
        ft = withDeltas(base, root.resolve("ft"), delta);
    }

    static double[] gauss(Random r, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = r.nextGaussian();
        return d;
    }

    /** A copy of model {@code from} with float32 deltas added to some tensors. */
    static Path withDeltas(Path from, Path to, Map<String, double[]> delta) throws IOException {
        Files.createDirectories(to);
        try (var s = Files.list(from)) {
            for (Path p : s.toList()) if (!p.getFileName().toString().endsWith(".safetensors")) Files.copy(p, to.resolve(p.getFileName()));
        }
        try (Checkpoint c = Checkpoint.open(from.toString()); Arena arena = Arena.ofConfined()) {
            List<SafetensorsWriter.Entry> es = new ArrayList<>();
            for (String n : c.names()) es.add(new SafetensorsWriter.Entry(n, c.tensor(n).dtype(), c.tensor(n).shape()));
            try (SafetensorsWriter w = new SafetensorsWriter(to.resolve("model.safetensors"), es, Map.of("format", "pt"))) {
                for (String n : c.names()) {
                    TensorView v = c.tensor(n);
                    MemorySegment bytes = arena.allocate(v.data().byteSize());
                    bytes.copyFrom(v.data());
                    double[] d = delta.get(n);
                    if (d != null) for (int i = 0; i < d.length; i++) bytes.setAtIndex(F32, i, (float) (bytes.getAtIndex(F32, i) + d[i]));
                    w.write(n, bytes);
                }
            }
        }
        return to;
    }

    Path extract(String name, String... extra) {
        Path out = dir.resolve(name);
        List<String> args = new ArrayList<>(List.of("extract-lora", "--model", ft.toString(), "--base-model", base.toString(), "--out-path", out.toString()));
        args.addAll(List.of(extra));
        var r = MergeFixtures.cli(args.toArray(String[]::new));
        assertEquals(0, r.exit(), r.err());
        return out;
    }

    /** base+adapter through a one-model linear merge. */
    Path apply(Path adapter, String name) throws IOException {
        Path out = dir.resolve(name);
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, name + ".yml", "merge_method: linear\nmodels:\n  - {model: " + base + "+" + adapter
                + ", parameters: {weight: 1}}\ndtype: float32\n").toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        return out;
    }

    static double frobenius(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.sqrt(s);
    }

    @Test
    void appliedAdapterReconstructsTheFineTuneToWhatTheRankAllows() throws IOException {
        Path ad = extract("ad", "--max-rank", "4");
        JsonNode cfg = JSON.readTree(Files.readString(ad.resolve("adapter_config.json")));
        assertEquals(4, cfg.get("r").asInt());
        assertEquals(4, cfg.get("lora_alpha").asInt());
        assertEquals(0, cfg.get("rank_pattern").size());
        Set<String> saved = new TreeSet<>();
        cfg.get("modules_to_save").forEach(x -> saved.add(x.asText()));
        assertEquals(new TreeSet<>(List.of("embed_tokens", "lm_head", "input_layernorm", "post_attention_layernorm", "norm")), saved);
        Set<String> targets = new TreeSet<>();
        cfg.get("target_modules").forEach(x -> targets.add(x.asText()));
        assertEquals(new TreeSet<>(List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")), targets);
        Path out = apply(ad, "applied");
        // rank-3 delta, rank 4: exact up to float32 rounding
        double[] want = MergeFixtures.values(ft, Q), got = MergeFixtures.values(out, Q);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 2e-6, Q + " [" + i + "]");
        // full-rank delta: the residual is the norm of the 28 dropped singular values (randomized: within 2%)
        double[] ftV = MergeFixtures.values(ft, V), baseV = MergeFixtures.values(base, V), outV = MergeFixtures.values(out, V);
        double[] d = new double[ftV.length];
        for (int i = 0; i < d.length; i++) d[i] = ftV[i] - baseV[i];
        double[] ev = symmetricEigenvalues(gram(d, 32));
        double optimal = 0;
        for (int j = 4; j < 32; j++) optimal += Math.max(ev[j], 0);
        optimal = Math.sqrt(optimal);
        double err = frobenius(outV, ftV);
        assertTrue(err >= optimal * 0.999 && err <= optimal * 1.02, "V residual " + err + " vs Eckart–Young " + optimal);
        // saved whole: norms and embeddings equal the fine-tune's bit for bit; untouched tensors equal the base's
        for (String n : List.of(NORM, EMB, "lm_head.weight")) assertEquals(java.util.Arrays.toString(MergeFixtures.values(ft, n)), java.util.Arrays.toString(MergeFixtures.values(out, n)), n);
        assertEquals(java.util.Arrays.toString(MergeFixtures.values(ft, "model.layers.1.mlp.up_proj.weight")),
                java.util.Arrays.toString(MergeFixtures.values(out, "model.layers.1.mlp.up_proj.weight")));
    }

    @Test
    void optionsExcludeScaleAndEpsilonAsMergekitDoes() throws IOException {
        Path ad = extract("opts", "--max-rank", "6", "--no-distribute-scale", "-e", "v_proj", "--sv-epsilon", "1e-3", "--skip-undecomposable");
        JsonNode cfg = JSON.readTree(Files.readString(ad.resolve("adapter_config.json")));
        try (SafetensorsFile a = SafetensorsFile.open(ad.resolve("adapter_model.safetensors"))) {
            assertFalse(a.contains("base_model.model." + V.replace(".weight", ".lora_A.weight")), "excluded by -e");
            assertFalse(a.names().stream().anyMatch(n -> n.contains("layernorm")), "norms skipped");
            // sv-epsilon: Q's delta has rank 3, so its decomposition keeps 3; zero deltas keep 1
            String qa = "base_model.model." + Q.replace(".weight", ".lora_A.weight"), qb = qa.replace("lora_A", "lora_B");
            assertEquals("[3, 32]", a.tensor(qa).shape().toString());
            assertEquals(3, cfg.get("r").asInt(), "r is the largest rank kept");
            assertFalse(cfg.get("rank_pattern").has("model.layers.0.self_attn.q_proj"), "only ranks other than r are listed");
            assertEquals(1, cfg.get("rank_pattern").get("model.layers.0.self_attn.k_proj").asInt());
            // no distributed scale: B = U has orthonormal columns
            double[] b = MergeFixtures.values(a.tensor(qb));
            for (int c = 0; c < 3; c++) {
                double n = 0;
                for (int i = 0; i < 32; i++) n += b[i * 3 + c] * b[i * 3 + c];
                assertEquals(1, n, 1e-5, "column " + c);
            }
        }
        Path out = apply(ad, "applied2");
        double[] want = MergeFixtures.values(ft, Q), got = MergeFixtures.values(out, Q);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 2e-6, Q + " [" + i + "]");
        assertEquals(java.util.Arrays.toString(MergeFixtures.values(base, V)), java.util.Arrays.toString(MergeFixtures.values(out, V)), "excluded: the base's");
    }

    @Test
    void badInputsAreOneLineErrors() throws IOException {
        Path wide = RandomModels.builder().arch(Arch.LLAMA).hidden(32).intermediate(48).layers(2).heads(4).kvHeads(4).vocab(24)
                .maxPositions(32).dtype(DType.F32).seed(21).write(dir.resolve("wide"));
        var r = MergeFixtures.cli("extract-lora", "--model", wide.toString(), "--base-model", base.toString(), "--out-path", dir.resolve("x").toString());
        CliFailure.assertOneLine(r, 1, "model.layers.0.mlp", "[48, 32]", "[40, 32]");
        CliFailure.assertNothingWritten(dir.resolve("x"));
        r = MergeFixtures.cli("extract-lora", "--model", ft.toString(), "--base-model", base.toString(), "--out-path", dir.resolve("y").toString(), "--max-rank", "0");
        CliFailure.assertOneLine(r, 2, "--max-rank");
        r = MergeFixtures.cli("extract-lora", "--model", ft.toString(), "--base-model", base.toString(), "--out-path", dir.resolve("z").toString(), "-i", "nothing-matches");
        CliFailure.assertOneLine(r, 2, "no weight was decomposed");
        r = MergeFixtures.cli("extract-lora", "--model", ft + "+" + dir, "--base-model", base.toString(), "--out-path", dir.resolve("p").toString());
        CliFailure.assertOneLine(r, 2, "extract-lora reads full checkpoints");
        r = MergeFixtures.cli("extract-lora", "--model", ft.toString(), "--base-model", base.toString(), "--out-path", dir.resolve("p").toString(), "-e", "(");
        CliFailure.assertOneLine(r, 2, "--exclude-regex", "'('");
        r = MergeFixtures.cli("extract-lora", "--model", ft.toString(), "--base-model", base.toString(), "--out-path", dir.resolve("p").toString(), "--sv-epsilon", "-1");
        CliFailure.assertOneLine(r, 2, "--sv-epsilon");
        CliFailure.assertNothingWritten(dir.resolve("p"));
        CliFailure.assertNothingWritten(dir.resolve("z"));
    }

    /** DᵀD for D [n × n]. */
    static double[] gram(double[] d, int n) {
        double[] g = new double[n * n];
        for (int a = 0; a < n; a++) for (int b = 0; b < n; b++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += d[i * n + a] * d[i * n + b];
            g[a * n + b] = s;
        }
        return g;
    }

    /** Eigenvalues of a symmetric matrix, descending (cyclic two-sided Jacobi). */
    static double[] symmetricEigenvalues(double[] a) {
        int n = (int) Math.round(Math.sqrt(a.length));
        a = a.clone();
        for (int sweep = 0; sweep < 100; sweep++) {
            double off = 0;
            for (int p = 0; p < n; p++) for (int q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
            if (off < 1e-30) break;
            for (int p = 0; p < n; p++) {
                for (int q = p + 1; q < n; q++) {
                    double apq = a[p * n + q];
                    if (apq == 0) continue;
                    double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                    double t = Math.signum(theta == 0 ? 1 : theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
                    double c = 1 / Math.sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++) {
                        double akp = a[k * n + p], akq = a[k * n + q];
                        a[k * n + p] = c * akp - s * akq;
                        a[k * n + q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++) {
                        double apk = a[p * n + k], aqk = a[q * n + k];
                        a[p * n + k] = c * apk - s * aqk;
                        a[q * n + k] = s * apk + c * aqk;
                    }
                }
            }
        }
        double[] ev = new double[n];
        for (int i = 0; i < n; i++) ev[i] = a[i * n + i];
        java.util.Arrays.sort(ev);
        for (int i = 0; i < n / 2; i++) { double t = ev[i]; ev[i] = ev[n - 1 - i]; ev[n - 1 - i] = t; }
        return ev;
    }
}
