package dev.mergeforge.run;

import dev.mergeforge.backends.Backends;
import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.cli.Main;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.linalg.SpdSolverTestAccess;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** regmean and fisher end to end through `mergeforge merge`, with and without aim:, against references computed here. */
class DataInformedMergeTest {
    static final int LAYERS = 2;
    static final double[] W = {1.0, 2.0};

    @TempDir Path tmp;
    Path base, a, b;
    Map<String, float[]> tb, ta, tbb;
    Map<String, Shape> shapes = new LinkedHashMap<>();

    @BeforeEach
    void models() throws Exception {
        base = Files.createDirectories(tmp.resolve("base"));
        a = Files.createDirectories(tmp.resolve("a"));
        b = Files.createDirectories(tmp.resolve("b"));
        tb = TinyLlama.write(base, LAYERS, 1);
        ta = TinyLlama.write(a, LAYERS, 2);
        tbb = TinyLlama.write(b, LAYERS, 3);
        try (SafetensorsFile f = SafetensorsFile.open(a.resolve("model.safetensors"))) {
            for (String n : f.names()) shapes.put(n, f.tensor(n).shape());
        }
    }

    static float[] floats(SafetensorsFile f, String n) {
        return f.tensor(n).data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
    }

    /** Grams from inputs X the test draws itself (per model, per stored name), G = XᵀX/tokens. */
    Map<String, float[]> grams(long seed, int deadChannel) {
        Random r = new Random(seed);
        Map<String, float[]> g = new LinkedHashMap<>();
        for (String n : shapes.keySet()) {
            if (shapes.get(n).rank() != 2 || n.contains("embed") || n.contains("k_proj") || n.contains("v_proj") || n.contains("up_proj")) continue;
            int in = (int) shapes.get(n).dim(1), tokens = 3 * in;
            float[] x = new float[tokens * in];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (1 + (i % in) % 3));
            if (deadChannel >= 0) for (int t = 0; t < tokens; t++) x[t * in + deadChannel] = 0f;
            float[] gm = new float[in * in];
            for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
                double s = 0;
                for (int t = 0; t < tokens; t++) s += (double) x[t * in + i] * x[t * in + j];
                gm[i * in + j] = (float) (s / tokens);
            }
            g.put(n, gm);
        }
        return g;
    }

    static String stored(String n) {
        return n.replace("k_proj", "q_proj").replace("v_proj", "q_proj").replace("up_proj", "gate_proj");
    }

    Path writeGrams(String file, Map<String, float[]> g) {
        Map<String, Shape> s = new LinkedHashMap<>();
        g.forEach((n, v) -> { int in = (int) Math.round(Math.sqrt(v.length)); s.put(n, Shape.of(in, in)); });
        StringBuilder shared = new StringBuilder("{");
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            for (String k : List.of("self_attn.k_proj", "self_attn.v_proj", "mlp.up_proj")) {
                if (shared.length() > 1) shared.append(',');
                shared.append('"').append(p).append(k).append(".weight\":\"").append(stored(p + k + ".weight")).append('"');
            }
        }
        Path p = tmp.resolve(file);
        TinyLlama.writeTensors(p, g, s, Map.of("stat", "gram", "shared_inputs", shared.append('}').toString()));
        return p;
    }

    /** Expected regmean output: closed form per Linear (α given), weighted average elsewhere. */
    Map<String, double[]> regmeanReference(Map<String, float[]> ga, Map<String, float[]> gb, double alpha) {
        Map<String, double[]> out = new LinkedHashMap<>();
        for (String n : shapes.keySet()) {
            Shape s = shapes.get(n);
            float[] wa = ta.get(n), wb = tbb.get(n);
            double[] e = new double[wa.length];
            if (ga.containsKey(stored(n))) {
                int rows = (int) s.dim(0), in = (int) s.dim(1);
                double[] A = new double[in * in], B = new double[in * rows];
                List<float[]> gs = List.of(ga.get(stored(n)), gb.get(stored(n))), ws = List.of(wa, wb);
                for (int m = 0; m < 2; m++) for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
                    // G~ = αG + (1−α)diag(G); A = Σ w G~; B = Σ w G~ Wᵀ
                    double g = gs.get(m)[i * in + j] * (i == j ? 1 : alpha);
                    A[i * in + j] += W[m] * g;
                    for (int o = 0; o < rows; o++) B[i * rows + o] += W[m] * g * ws.get(m)[o * in + j];
                }
                double[] x = SpdSolverTestAccess.gauss(A, in, B, rows);
                for (int o = 0; o < rows; o++) for (int i = 0; i < in; i++) e[o * in + i] = x[i * rows + o];
            } else {
                for (int i = 0; i < e.length; i++) e[i] = (W[0] * wa[i] + W[1] * wb[i]) / (W[0] + W[1]);
            }
            out.put(n, e);
        }
        return out;
    }

    /** AIM on top: θ = θ₀ + (θ − θ₀)(1 − (1 − ω)·s/max s) along input channels; embeddings untouched. */
    Map<String, double[]> relaxed(Map<String, double[]> merged, Map<String, float[]> act, double omega) {
        Map<String, double[]> out = new LinkedHashMap<>();
        merged.forEach((n, m) -> {
            double[] r = m.clone();
            float[] s = act.get(n);
            if (s != null) {
                double max = 0;
                for (float v : s) max = Math.max(max, v);
                int cols = s.length;
                for (int i = 0; i < r.length; i++) {
                    double imp = s[i % cols] / max, b0 = tb.get(n)[i];
                    r[i] = b0 + (m[i] - b0) * (1 - (1 - omega) * imp);
                }
            }
            out.put(n, r);
        });
        return out;
    }

    Map<String, float[]> actMeans() {
        Random r = new Random(99);
        Map<String, float[]> act = new LinkedHashMap<>();
        Map<String, Shape> s = new LinkedHashMap<>();
        for (String n : shapes.keySet()) {
            if (n.contains("embed")) continue;
            int width = (int) (shapes.get(n).rank() == 2 ? shapes.get(n).dim(1) : shapes.get(n).dim(0));
            float[] v = new float[width];
            for (int j = 0; j < width; j++) v[j] = 0.05f + (float) Math.abs(r.nextGaussian());
            act.put(n, v);
            s.put(n, Shape.of(width));
        }
        TinyLlama.writeTensors(tmp.resolve("act.safetensors"), act, s, Map.of("stat", "act_mean"));
        return act;
    }

    record Run(int rc, String err) {}

    Run merge(String yaml, Path out) throws Exception { return merge(yaml, out, "--backend", "java"); }

    Run merge(String yaml, Path out, String... backend) throws Exception {
        Path cfg = tmp.resolve("cfg-" + out.getFileName() + ".yaml");
        Files.writeString(cfg, yaml);
        StringWriter err = new StringWriter(), o = new StringWriter();
        var cl = Main.commandLine();
        cl.setErr(new PrintWriter(err));
        cl.setOut(new PrintWriter(o));
        List<String> args = new ArrayList<>(List.of("merge", cfg.toString(), out.toString()));
        args.addAll(List.of(backend));
        int rc = cl.execute(args.toArray(String[]::new));
        return new Run(rc, err.toString());
    }

    void assertOutput(Path out, Map<String, double[]> expect, double tol) {
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            assertEquals(expect.keySet(), new java.util.LinkedHashSet<>(f.names()).stream().filter(expect::containsKey).collect(java.util.stream.Collectors.toCollection(java.util.LinkedHashSet::new)));
            expect.forEach((n, e) -> {
                float[] got = floats(f, n);
                for (int i = 0; i < e.length; i++) assertEquals(e[i], got[i], tol * (1 + Math.abs(e[i])), n + "[" + i + "]");
            });
        }
    }

    String models(String calA, String calB) {
        return "models:\n  - model: " + a + "\n    parameters: {weight: 1.0}\n" + calA
                + "  - model: " + b + "\n    parameters: {weight: 2.0}\n" + calB;
    }

    @Test
    void regmeanWithAndWithoutAim() throws Exception {
        Map<String, float[]> ga = grams(10, -1), gb = grams(20, -1);
        Path fa = writeGrams("ga.safetensors", ga), fb = writeGrams("gb.safetensors", gb);
        String body = "merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + fb + "}\n")
                + "parameters: {alpha: 0.8}\ndtype: float32\n";
        Run r = merge(body, tmp.resolve("out"));
        assertEquals(0, r.rc(), r.err());
        Map<String, double[]> expect = regmeanReference(ga, gb, 0.8);
        assertOutput(tmp.resolve("out"), expect, 2e-4);
        Map<String, float[]> act = actMeans();
        r = merge(body + "base_model: " + base + "\naim: {omega: 0.3, stats: " + tmp.resolve("act.safetensors") + "}\n", tmp.resolve("aim"));
        assertEquals(0, r.rc(), r.err());
        assertOutput(tmp.resolve("aim"), relaxed(expect, act, 0.3), 2e-4);
    }

    Path fisherFile(String file, Map<String, float[]> f, String norm) {
        Map<String, String> meta = new LinkedHashMap<>(Map.of("stat", "fisher"));
        if (norm != null) meta.put("norm", norm);
        Path p = tmp.resolve(file);
        TinyLlama.writeTensors(p, f, shapes, meta);
        return p;
    }

    Map<String, float[]> fishers(long seed) {
        Random r = new Random(seed);
        Map<String, float[]> f = new LinkedHashMap<>();
        shapes.forEach((n, s) -> {
            float[] v = new float[(int) s.numel()];
            for (int i = 0; i < v.length; i++) v[i] = (float) Math.abs(r.nextGaussian()) * 1e-2f;
            f.put(n, v);
        });
        return f;
    }

    @Test
    void fisherWithAndWithoutAim() throws Exception {
        Map<String, float[]> fa = fishers(5), fb = fishers(6);
        double na = 0.5, nb = 3.0;
        Path pa = fisherFile("fa.safetensors", fa, Double.toString(na)), pb = fisherFile("fb.safetensors", fb, Double.toString(nb));
        String body = "merge_method: fisher\n" + models("    calibration: {stats: " + pa + "}\n", "    calibration: {stats: " + pb + "}\n")
                + "dtype: float32\n";
        Run r = merge(body, tmp.resolve("out"));
        assertEquals(0, r.rc(), r.err());
        Map<String, double[]> expect = new LinkedHashMap<>();
        double inv = 1 / na + 1 / nb;
        double[] c = {W[0] * (1 / na) / inv, W[1] * (1 / nb) / inv};
        for (String n : shapes.keySet()) {
            double[] e = new double[ta.get(n).length];
            for (int i = 0; i < e.length; i++) {
                // θ* = Σ c_i w_i (F_i + ε) θ_i / Σ c_i w_i (F_i + ε)
                double a0 = c[0] * (fa.get(n)[i] + (double) 1e-6f), a1 = c[1] * (fb.get(n)[i] + (double) 1e-6f);
                e[i] = (a0 * ta.get(n)[i] + a1 * tbb.get(n)[i]) / (a0 + a1);
            }
            expect.put(n, e);
        }
        assertOutput(tmp.resolve("out"), expect, 1e-5);
        Map<String, float[]> act = actMeans();
        r = merge(body + "base_model: " + base + "\naim: {omega: 0.5, stats: " + tmp.resolve("act.safetensors") + "}\n", tmp.resolve("aim"));
        assertEquals(0, r.rc(), r.err());
        assertOutput(tmp.resolve("aim"), relaxed(expect, act, 0.5), 1e-5);
    }

    @Test
    void regmeanOnDataComputesGramsLikeTheCalibrateCommand() throws Exception {
        Path data = tmp.resolve("d.jsonl");
        Random r = new Random(4);
        StringBuilder sb = new StringBuilder();
        for (int s = 0; s < 3; s++) {
            sb.append("{\"input_ids\": [1");
            for (int t = 1; t < 10; t++) sb.append(", ").append(r.nextInt(TinyLlama.VOCAB));
            sb.append("]}\n");
        }
        Files.writeString(data, sb);
        for (Path m : List.of(a, b)) {
            int rc = Main.commandLine().execute("calibrate", m.toString(), "--stat", "gram", "--data", data.toString(), "--no-cache",
                    "-o", tmp.resolve(m.getFileName() + ".gram").toString());
            assertEquals(0, rc);
        }
        String viaStats = "merge_method: regmean\n" + models("    calibration: {stats: " + tmp.resolve("a.gram") + "}\n",
                "    calibration: {stats: " + tmp.resolve("b.gram") + "}\n") + "parameters: {ridge: 0.01}\ndtype: float32\n";
        assertEquals(0, merge(viaStats, tmp.resolve("viaStats")).rc());
        Path cfgFile = tmp.resolve("viaData.yaml");
        Files.writeString(cfgFile, "merge_method: regmean\n" + models("", "") + "calibration: {data: " + data + "}\nparameters: {ridge: 0.01}\ndtype: float32\n");
        MergeConfig cfg = ConfigReader.read(cfgFile);
        List<String> notes = new ArrayList<>();
        try (Planner.Inputs in = new Planner.Inputs(); JavaBackend be = new JavaBackend(2)) {
            Planner.Plan plan = Planner.plan(cfg, in, StatsLocator.calibrating(tmp.resolve("cache"), notes::add));
            Merger.run(plan, in, tmp.resolve("viaData"), new Merger.Options(be, 0, 1L << 40, false, false, null, Events.NONE));
        }
        assertEquals(2, notes.size(), notes.toString());
        try (SafetensorsFile x = SafetensorsFile.open(tmp.resolve("viaStats/model.safetensors"));
             SafetensorsFile y = SafetensorsFile.open(tmp.resolve("viaData/model.safetensors"))) {
            for (String n : x.names()) assertArrayEquals(floats(x, n), floats(y, n), n);
            // the merge differs from a plain average: the Grams mattered
            String q = "model.layers.1.self_attn.q_proj.weight";
            assertNotEquals((ta.get(q)[0] + 2 * tbb.get(q)[0]) / 3, floats(x, q)[0], 1e-4);
        }
        try (var files = Files.list(tmp.resolve("cache"))) {
            assertEquals(2, files.filter(p -> p.getFileName().toString().startsWith("gram-")).count());
        }
    }

    @Test
    void errorsNameTheFileAndTheFix() throws Exception {
        Map<String, float[]> ga = grams(10, -1);
        Path fa = writeGrams("ga.safetensors", ga);
        // a stats file that does not exist
        Run r = merge("merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + tmp.resolve("nope.safetensors") + "}\n"), tmp.resolve("o1"));
        assertEquals(2, r.rc());
        assertTrue(r.err().contains("models[1].calibration.stats: file " + tmp.resolve("nope.safetensors") + " not found") && r.err().contains("--stat gram"), r.err());
        // no statistics at all
        r = merge("merge_method: regmean\n" + models("", ""), tmp.resolve("o2"));
        assertEquals(2, r.rc());
        assertTrue(r.err().contains("models[0]: regmean needs statistics of " + a), r.err());
        // a Gram of the wrong shape
        Map<String, float[]> bad = new LinkedHashMap<>(ga);
        bad.put("model.layers.0.mlp.down_proj.weight", new float[25]);
        Path fb = writeGrams("bad.safetensors", bad);
        r = merge("merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + fb + "}\n"), tmp.resolve("o3"));
        assertEquals(1, r.rc());
        assertTrue(r.err().contains("Gram 'model.layers.0.mlp.down_proj.weight'") && r.err().contains("needs [20, 20]"), r.err());
        // a Fisher without its norm while normalize is on, and Fisher from data
        Path pf = fisherFile("f.safetensors", fishers(1), null);
        r = merge("merge_method: fisher\n" + models("    calibration: {stats: " + pf + "}\n", "    calibration: {stats: " + pf + "}\n"), tmp.resolve("o4"));
        assertEquals(1, r.rc());
        assertTrue(r.err().contains("metadata 'norm' is missing") && r.err().contains("normalize: false"), r.err());
        r = merge("merge_method: fisher\n" + models("    calibration: {stats: " + pf + "}\n", "") + "parameters: {normalize: false}\n"
                + "calibration: {data: " + tmp.resolve("x.txt") + "}\n", tmp.resolve("o5"));
        assertEquals(2, r.rc());
        assertTrue(r.err().contains("no backward pass"), r.err());
    }

    @Test
    void aGramInOneFileOnlyOrANonFiniteGramIsAnError() throws Exception {
        Map<String, float[]> ga = grams(10, -1), gb = new LinkedHashMap<>(grams(20, -1));
        gb.remove("model.layers.1.self_attn.o_proj.weight");
        Path fa = writeGrams("ga.safetensors", ga), fb = writeGrams("gb.safetensors", gb);
        Run r = merge("merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + fb + "}\n"), tmp.resolve("o1"));
        assertEquals(1, r.rc());
        assertTrue(r.err().contains("tensor 'model.layers.1.self_attn.o_proj.weight' has a Gram in " + fa + " but none in " + fb), r.err());
        Map<String, float[]> nan = new LinkedHashMap<>(grams(20, -1));
        nan.get("model.layers.0.mlp.gate_proj.weight")[7] = Float.NaN;
        Path fn = writeGrams("gn.safetensors", nan);
        r = merge("merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + fn + "}\n"), tmp.resolve("o2"));
        assertEquals(1, r.rc());
        assertTrue(r.err().contains("'model.layers.0.mlp.gate_proj.weight' in " + fn) && r.err().contains("non-finite"), r.err());
    }

    @Test
    void negativeWeightsAreRejected() throws Exception {
        Path fa = writeGrams("ga.safetensors", grams(10, -1));
        Run r = merge("merge_method: regmean\nmodels:\n  - model: " + a + "\n    parameters: {weight: -1.0}\n  - model: " + b
                + "\ncalibration: {stats: " + fa + "}\n", tmp.resolve("o"));
        assertEquals(2, r.rc());
        assertTrue(r.err().contains("weight") && r.err().contains(">= 0"), r.err());
    }

    @Test
    void slicesReadTheTopLevelStatisticsByEachSourceTensorName() throws Exception {
        Map<String, float[]> ga = grams(10, -1);
        Path fa = writeGrams("ga.safetensors", ga);
        // one file for both models: with equal weights and equal Grams the result is still a Gram-weighted merge
        String cal = "calibration: {stats: " + fa + "}\nparameters: {alpha: 0.5}\ndtype: float32\n";
        Run r = merge("merge_method: regmean\nmodels:\n  - model: " + a + "\n  - model: " + b + "\n" + cal, tmp.resolve("models"));
        assertEquals(0, r.rc(), r.err());
        r = merge("merge_method: regmean\nslices:\n  - sources:\n      - model: " + a + "\n        layer_range: [0, 2]\n      - model: " + b
                + "\n        layer_range: [0, 2]\n" + cal, tmp.resolve("slices"));
        assertEquals(0, r.rc(), r.err());
        try (SafetensorsFile x = SafetensorsFile.open(tmp.resolve("models/model.safetensors"));
             SafetensorsFile y = SafetensorsFile.open(tmp.resolve("slices/model.safetensors"))) {
            for (String n : x.names()) assertArrayEquals(floats(x, n), floats(y, n), n);
        }
    }

    @Test
    void singularGramFallsBackWithANote() throws Exception {
        Path fa = writeGrams("ga.safetensors", grams(10, 3)), fb = writeGrams("gb.safetensors", grams(20, 3));
        Run r = merge("merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + fb + "}\n"), tmp.resolve("o"));
        assertEquals(0, r.rc(), r.err());
        assertTrue(r.err().contains("note: regmean: 'model.layers.0.self_attn.q_proj.weight': the summed Gram is not positive definite"), r.err());
    }

    @Test
    void regmeanOnCudaWithoutAGpuFailsInOneLineNamingTheReason() throws Exception {
        Optional<String> why = dev.mergeforge.backend.cuda.CudaBackend.unavailableReason();
        Assumptions.assumeTrue(why.isPresent(), "a GPU is present: CudaDenseSolverGpuTest covers the solve there");
        Path fa = writeGrams("ga.safetensors", grams(10, -1)), fb = writeGrams("gb.safetensors", grams(20, -1));
        Path out = tmp.resolve("cuda");
        Run r = merge("merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + fb + "}\n"),
                out, "--device", "cuda");
        assertEquals(2, r.rc(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("--backend cuda is unavailable: " + why.get()), r.err());
        assertFalse(Files.exists(out.resolve("model.safetensors")), "nothing written");
    }

    @Test
    void aDeviceSolverThatCannotRunStopsTheMergeInOneLine() throws Exception {
        // what CudaBackend.denseSolver() does without libcusolver, on a backend this machine can open
        String reason = "regmean: --backend cuda solves on the GPU with cuSOLVER, which is unavailable: test reason; or use --backend java";
        Backends.register(new Backends.Kind("nosolver-test", -1, Optional::empty, (threads, device) -> new JavaBackend(1) {
            @Override public String name() { return "nosolver-test"; }
            @Override public Optional<DenseSolver> denseSolver() { throw new MergeforgeException(reason); }
        }));
        try {
            Path fa = writeGrams("ga.safetensors", grams(10, -1)), fb = writeGrams("gb.safetensors", grams(20, -1));
            Path out = tmp.resolve("nosolver");
            Run r = merge("merge_method: regmean\n" + models("    calibration: {stats: " + fa + "}\n", "    calibration: {stats: " + fb + "}\n"),
                    out, "--backend", "nosolver-test");
            assertEquals(1, r.rc(), r.err());
            // progress lines come first; the failure is one line, no trace
            assertEquals(List.of("error: " + reason), r.err().lines().filter(l -> l.startsWith("error:") || l.startsWith("\tat ")).toList(), r.err());
            assertFalse(Files.exists(out.resolve("model.safetensors")), "nothing written");
        } finally {
            Backends.unregister("nosolver-test");
        }
    }
}
