package dev.mergeforge.backend.cuda;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.merge.MethodRegistry;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.run.Events;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.run.Merger;
import dev.mergeforge.run.PlannedTensor;
import dev.mergeforge.run.Planner;
import dev.mergeforge.run.StatsLocator;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.function.BiFunction;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The device-resident pipeline end to end: every method of the registry merged through the
 * Planner and the Merger (read-ahead thread, prefetches, resident tiles, the pool's release
 * listener, hostAccess in Fisher and RegMean, AIM on the device) on the CUDA backend running the
 * real kernels on the host emulator must write byte-identical files to the Java backend's, with
 * and without aim:. And a linear merge of bf16 models must copy exactly the stored bytes in and
 * out: the tiles stay on the device between ops.
 */
class CudaMergeEquivalenceTest {
    @TempDir static Path dir;
    static RandomModels.Family f;
    static Path fisherA, fisherB, gramA, gramB, act;

    @BeforeAll
    static void models() {
        f = MergeFixtures.family(Arch.QWEN2, DType.BF16, 2, 1, dir.resolve("models"));
        Map<String, Shape> shapes = new LinkedHashMap<>();
        try (Checkpoint c = Checkpoint.open(f.base())) {
            for (String n : c.names()) shapes.put(n, c.tensor(n).shape());
        }
        fisherA = stats("fa", shapes, 5, (n, s) -> s, Map.of("stat", "fisher", "norm", "0.5"));
        fisherB = stats("fb", shapes, 6, (n, s) -> s, Map.of("stat", "fisher", "norm", "3.0"));
        // a Gram [in, in] per 2-D Linear weight; G = XᵀX/tokens of random X, so positive definite
        BiFunction<String, Shape, Shape> gram = (n, s) -> s.rank() == 2 && !n.contains("embed") ? Shape.of(s.dim(1), s.dim(1)) : null;
        gramA = stats("ga", shapes, 10, gram, Map.of("stat", "gram"));
        gramB = stats("gb", shapes, 20, gram, Map.of("stat", "gram"));
        BiFunction<String, Shape, Shape> channels = (n, s) -> n.contains("embed") ? null : Shape.of(s.rank() == 2 ? s.dim(1) : s.dim(0));
        act = stats("act", shapes, 99, channels, Map.of("stat", "act_mean"));
    }

    /** A float32 stats file: for each tensor whose {@code shapeOf} is not null, random values of that shape (Grams: XᵀX/tokens). */
    static Path stats(String name, Map<String, Shape> shapes, long seed, BiFunction<String, Shape, Shape> shapeOf, Map<String, String> meta) {
        Random r = new Random(seed);
        Map<String, float[]> t = new LinkedHashMap<>();
        Map<String, Shape> s = new LinkedHashMap<>();
        boolean gram = "gram".equals(meta.get("stat"));
        shapes.forEach((n, shape) -> {
            Shape out = shapeOf.apply(n, shape);
            if (out == null) return;
            float[] v = new float[Math.toIntExact(out.numel())];
            if (gram) {
                int in = Math.toIntExact(out.dim(0)), tokens = 3 * in;
                double[] x = new double[tokens * in];
                for (int i = 0; i < x.length; i++) x[i] = r.nextGaussian();
                for (int i = 0; i < in; i++) for (int j = 0; j < in; j++) {
                    double acc = 0;
                    for (int k = 0; k < tokens; k++) acc += x[k * in + i] * x[k * in + j];
                    v[i * in + j] = (float) (acc / tokens);
                }
            } else {
                for (int i = 0; i < v.length; i++) v[i] = 0.01f + (float) Math.abs(r.nextGaussian()) * 1e-2f;
            }
            t.put(n, v);
            s.put(n, out);
        });
        Path p = dir.resolve(name + ".safetensors");
        TinyLlama.writeTensors(p, t, s, meta);
        return p;
    }

    /** A config per method of the registry: {global parameters, per-model parameters} for the common shape, or a whole body. */
    static String body(String method, boolean aim) {
        Path base = f.base(), a = f.fineTunes().get(0), b = f.fineTunes().get(1);
        return switch (method) {
            case "linear" -> common(method, "", "weight: 0.7", aim);
            case "task_arithmetic" -> common(method, "lambda: 0.8", "weight: 0.5", aim);
            case "ties" -> common(method, "", "weight: 1.0, density: 0.4", aim);
            case "dare_linear" -> common(method, "", "weight: 1.0, density: 0.5", aim);
            case "dare_ties" -> common(method, "", "weight: 0.6, density: 0.3", aim);
            case "breadcrumbs", "breadcrumbs_ties" -> common(method, "", "weight: 1.0, density: 0.8, gamma: 0.05", aim);
            case "della", "della_linear" -> common(method, "", "weight: 1.0, density: 0.5, epsilon: 0.1", aim);
            case "multislerp" -> common(method, "", "weight: 1.0", aim);
            case "karcher", "model_stock" -> common(method, "", "", aim);
            case "sce" -> common(method, "select_topk: 0.5", "", aim);
            case "ram" -> common(method, "", "", aim);
            case "ramplus_tl" -> common(method, "r: 0.5, alpha: 1.0", "", aim);
            case "arcee_fusion" -> "merge_method: arcee_fusion\nbase_model: " + base + "\nmodels:\n  - model: " + base + "\n  - model: " + a + "\n";
            case "slerp" -> "merge_method: slerp\nbase_model: " + base + "\nmodels:\n  - model: " + base + "\n  - model: " + a + "\nparameters: {t: [0.1, 0.9]}\n";
            case "nearswap" -> "merge_method: nearswap\nbase_model: " + base + "\nmodels:\n  - model: " + base + "\n  - model: " + a + "\nparameters: {t: 0.01}\n";
            case "nuslerp" -> "merge_method: nuslerp\n" + (aim ? "base_model: " + base + "\n" : "") + "models:\n  - model: " + a
                    + "\n    parameters: {weight: 0.3}\n  - model: " + b + "\n    parameters: {weight: 0.7}\n";
            case "passthrough" -> "merge_method: passthrough\nmodels:\n  - model: " + b + "\n    parameters: {scale: 0.5}\n";
            case "fisher" -> withStats(method, fisherA, fisherB, "", aim);
            case "regmean" -> withStats(method, gramA, gramB, "parameters: {alpha: 0.8}\n", aim);
            default -> throw new IllegalArgumentException("no config for method " + method + ": add one to CudaMergeEquivalenceTest.body");
        };
    }

    /** The models merged with the same per-model parameters; a base where the method takes one (listed as a model too when it does not, for AIM). */
    static String common(String method, String global, String perModel, boolean aim) {
        MethodSpec spec = MethodRegistry.get(method);
        boolean base = spec.base() == MethodSpec.BaseUse.REQUIRED || aim;
        StringBuilder y = new StringBuilder("merge_method: " + method + "\n");
        if (base) y.append("base_model: ").append(f.base()).append('\n');
        y.append("models:\n");
        List<Path> models = new ArrayList<>(f.fineTunes());
        if (aim && spec.base() == MethodSpec.BaseUse.UNUSED) models.addFirst(f.base());
        for (Path p : models) {
            y.append("  - model: ").append(p).append('\n');
            if (!perModel.isEmpty()) y.append("    parameters: {").append(perModel).append("}\n");
        }
        if (!global.isEmpty()) y.append("parameters: {").append(global).append("}\n");
        return y.toString();
    }

    static String withStats(String method, Path sa, Path sb, String global, boolean aim) {
        return "merge_method: " + method + "\n" + (aim ? "base_model: " + f.base() + "\n" : "") + "models:\n"
                + "  - model: " + f.fineTunes().get(0) + "\n    parameters: {weight: 1.0}\n    calibration: {stats: " + sa + "}\n"
                + "  - model: " + f.fineTunes().get(1) + "\n    parameters: {weight: 2.0}\n    calibration: {stats: " + sb + "}\n" + global;
    }

    static Stream<String> methods() { return MethodRegistry.all().stream().map(MethodSpec::name); }

    static Path merge(String name, String yaml, boolean aim, Backend be) throws IOException {
        Path cfgFile = MergeFixtures.yaml(dir, name + ".yml", yaml);
        MergeConfig cfg = ConfigReader.read(cfgFile);
        Path out = dir.resolve(name + "-" + be.name());
        try (Planner.Inputs in = new Planner.Inputs();
             AimRelaxer relax = aim ? new AimRelaxer(act, AimRelaxer.Settings.of(0.3), dev.mergeforge.arch.Architectures.LLAMA, false) : null) {
            Planner.Plan plan = Planner.plan(cfg, in, StatsLocator.calibrating(null, n -> { }));
            Merger.run(plan, in, out, new Merger.Options(be, 3, 1L << 40, true, false, relax, Events.NONE));
        }
        return out;
    }

    static void assertSameFiles(Path a, Path b) throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.list(a)) {
            files = s.sorted().toList();
        }
        assertTrue(files.stream().anyMatch(p -> p.toString().endsWith(".safetensors")), "no weights in " + a);
        for (Path p : files) assertEquals(-1, Files.mismatch(p, b.resolve(p.getFileName())), p.getFileName() + " differs between " + a + " and " + b);
        try (Stream<Path> s = Files.list(b)) {
            assertEquals(files.size(), s.count(), "file lists differ: " + a + " vs " + b);
        }
    }

    /** Why the CUDA backend cannot run here, if so (the GPU variant overrides both). */
    Optional<String> unavailable() { return EmulatedDevice.unavailableReason(); }

    CudaBackend open() {
        EmulatedDevice dev = new EmulatedDevice();
        return new CudaBackend(dev, () -> new HostLapack(dev));
    }

    void sameBytes(String method, boolean aim) throws Exception {
        assumeTrue(unavailable().isEmpty(), () -> unavailable().orElse(""));
        String name = method + (aim ? "-aim" : "");
        String yaml = body(method, aim);
        Path java, cuda;
        try (JavaBackend be = new JavaBackend(2)) {
            java = merge(name, yaml, aim, be);
        }
        try (CudaBackend be = open()) {
            cuda = merge(name, yaml, aim, be);
            assertEquals(0, be.residentTiles(), "every tile went back to the pool, so no device copy is left");
            assertEquals(0, be.pendingPrefetches(), "every prefetched tensor was loaded");
        }
        assertSameFiles(java, cuda);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("methods")
    void everyMethodWritesTheJavaBackendsBytes(String method) throws Exception {
        sameBytes(method, false);
    }

    @ParameterizedTest(name = "{0} + aim")
    @MethodSource("methods")
    void everyMethodWithAimWritesTheJavaBackendsBytes(String method) throws Exception {
        // passthrough takes exactly one model and no base, so a config cannot give AIM the base it needs
        assumeTrue(!method.equals("passthrough"), "passthrough cannot have a base model");
        sameBytes(method, true);
    }

    @Test
    void aLinearMergeOfBf16ModelsCopiesOnlyTheStoredBytesInAndOut() throws Exception {
        // linear runs as passes over chunks (CudaChunkOps): each input chunk goes up once as its stored bytes, on the compute stream
        assumeTrue(getClass() == CudaMergeEquivalenceTest.class, "counts copies on the emulator only");
        assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
        String yaml = body("linear", false);
        MergeConfig cfg = ConfigReader.read(MergeFixtures.yaml(dir, "count.yml", yaml));
        EmulatedDevice dev = new EmulatedDevice();
        try (CudaBackend be = new CudaBackend(dev); Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(cfg, in, StatsLocator.calibrating(null, n -> { }));
            long stored = 0, written = 0, args = 0, loads = 0;
            for (PlannedTensor t : plan.tensors()) {
                assertTrue(!t.copyOnly(), t.name());
                for (var v : t.inputs()) {
                    assertEquals(DType.BF16, v.dtype(), v.name());
                    stored += v.data().byteSize();
                }
                written += t.outBytes();
                // weightedSum's kernel arguments: a device pointer and a float weight per model
                args += 12L * t.inputs().size();
                loads += t.inputs().size();
                assertTrue(t.shape().numel() <= Merger.STREAM_CHUNK, "one chunk per tensor: " + t.name());
            }
            Merger.run(plan, in, dir.resolve("count-out"), new Merger.Options(be, 0, 1L << 40, true, false, null, Events.NONE));
            assertEquals(stored + args, dev.bytesToDevice(), "host to device: the stored bf16 bytes of every input once, plus kernel arguments");
            assertEquals(0, dev.bytesPrefetched(), "chunked tensors are not prefetched whole: their chunks go up in their passes");
            assertEquals(written + 4 * loads, dev.bytesToHost(), "device to host: the stored bf16 bytes of every output once, and each load's NaN/Inf flag");
            assertEquals(2 * written, stored, "two bf16 models in, one bf16 model out");
        }
    }
}
