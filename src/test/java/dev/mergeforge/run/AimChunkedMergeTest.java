package dev.mergeforge.run;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.TensorRoles;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.calib.TinyLlama;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * AIM composed with the chunked methods (docs/aim.md, "AIM composes with any method"): the
 * relaxation as the last step of the combine pass writes the bytes of the whole-tensor path (the
 * method on whole tiles, then {@code Backend.relax}) on the Java and the native backend, with chunks
 * of one row, of a few rows and of many, on a Llama family (input channels along columns; norm
 * weights element by element) and a GPT-2 family (Conv1D weights stored [in, out]: along rows); the
 * relaxed tensors hold chunks, not whole tiles, and the run stays inside the smallest budget its
 * estimate allows (the ledger is strict under the suite's assertions).
 */
class AimChunkedMergeTest {
    @TempDir static Path dir;
    static RandomModels.Family llama, gpt2;

    @BeforeAll
    static void models() {
        llama = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, dir.resolve("llama"));
        gpt2 = MergeFixtures.family(Arch.GPT2, DType.F32, 2, 1, dir.resolve("gpt2"));
    }

    /** A random act_mean statistic for every weight of {@code base} but the embeddings and biases, some channels exactly 0. */
    static Path actMean(Path base, TensorRoles roles, String name) throws Exception {
        Map<String, float[]> t = new LinkedHashMap<>();
        Map<String, Shape> shapes = new LinkedHashMap<>();
        Random r = new Random(4);
        try (Checkpoint c = Checkpoint.open(base)) {
            for (String n : c.names()) {
                if (roles.isEmbedding(n) || n.endsWith(".bias")) continue;
                Shape s = c.tensor(n).shape();
                long ch = s.rank() < 2 ? s.numel() : roles.storedInOut(n) ? s.dim(0) : s.cols();
                float[] v = new float[Math.toIntExact(ch)];
                for (int i = 0; i < v.length; i++) v[i] = i % 7 == 3 ? 0f : (float) Math.abs(r.nextGaussian());
                t.put(n, v);
                shapes.put(n, Shape.of(ch));
            }
        }
        Path p = dir.resolve(name + ".safetensors");
        TinyLlama.writeTensors(p, t, shapes, Map.of("stat", "act_mean"));
        return p;
    }

    static Merger.Result merge(String name, String yaml, Backend be, long chunk, Path act, TensorRoles roles) throws Exception {
        Path cfg = Files.writeString(dir.resolve(name + ".yml"), yaml);
        Path out = dir.resolve(name + "-" + be.name() + "-" + chunk + "-" + System.nanoTime());
        try (Planner.Inputs in = new Planner.Inputs();
             AimRelaxer aim = act == null ? null : new AimRelaxer(act, AimRelaxer.Settings.of(0.3), roles, false)) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            return Merger.run(plan, in, out, new Merger.Options(be, 3, 1L << 40, true, false, aim, Events.NONE, InputChunks.CHUNK, chunk));
        }
    }

    static String configs(String method, RandomModels.Family f, String extra) {
        return ("merge_method: " + method + "\nbase_model: %1$s\nmodels:\n  - model: %2$s\n    parameters: {weight: 0.6, density: 0.4}\n"
                + "  - model: %3$s\n    parameters: {weight: 0.9, density: 0.6}\n" + extra)
                .formatted(f.base(), f.fineTunes().get(0), f.fineTunes().get(1));
    }

    @Test
    void relaxedChunksWriteTheWholeTensorPathsBytes() throws Exception {
        String[][] cases = {
                {"ties", "dtype: bfloat16\n"},
                {"breadcrumbs", "dtype: float16\n"},
                {"slerp", "parameters: {t: 0.4}\n"},
                {"nuslerp", "parameters: {nuslerp_flatten: false, nuslerp_row_wise: true}\n"}};
        try (JavaBackend java = new JavaBackend(2)) {
            List<Backend> streams = new ArrayList<>(List.of(java));
            NativeBackend nat = NativeBackend.isAvailable() ? new NativeBackend(2) : null;
            if (nat != null) streams.add(nat);
            try {
                for (RandomModels.Family f : List.of(llama, gpt2)) {
                    TensorRoles roles = f == llama ? Architectures.LLAMA : Architectures.GPT2;
                    Path act = actMean(f.base(), roles, f == llama ? "act-llama" : "act-gpt2");
                    for (String[] c : cases) {
                        if (f == gpt2 && !c[0].equals("ties") && !c[0].equals("slerp")) continue;
                        String yaml = c[0].equals("slerp") ? ("merge_method: slerp\nbase_model: %1$s\nmodels:\n  - model: %1$s\n  - model: %2$s\n" + c[1])
                                .formatted(f.base(), f.fineTunes().get(0)) : configs(c[0], f, c[1]);
                        if (c[0].equals("nuslerp")) yaml = yaml.replace(", density: 0.4", "").replace(", density: 0.6", "");
                        String what = c[0] + " on " + (f == llama ? "llama" : "gpt2");
                        Merger.Result ref = merge(c[0], yaml, ChunkedMergeTest.tilesOnly(java), Merger.STREAM_CHUNK, act, roles);
                        Merger.Result plain = merge(c[0] + "-plain", yaml, ChunkedMergeTest.tilesOnly(java), Merger.STREAM_CHUNK, null, roles);
                        assertTrue(Files.mismatch(ref.output().resolve("model.safetensors"), plain.output().resolve("model.safetensors")) != -1,
                                what + ": AIM had no effect");
                        for (Backend be : streams) {
                            // 1: a row per chunk; 97: a few rows (rounded down to whole rows); 5000: many rows, the last chunk short
                            for (long chunk : be == java ? new long[] {1, 97} : new long[] {97, 5000}) {
                                Merger.Result got = merge(c[0], yaml, be, chunk, act, roles);
                                FusedChunksTest.sameFiles(ref.output(), got.output());
                                if (chunk == 97) {
                                    assertTrue(got.peakWorkingBytes() * 2 < ref.peakWorkingBytes(), what + " on " + be.name()
                                            + ": relaxed chunks hold " + got.peakWorkingBytes() + " bytes, the whole-tensor tiles " + ref.peakWorkingBytes());
                                }
                            }
                        }
                    }
                }
            } finally {
                if (nat != null) nat.close();
            }
        }
    }

    /** A tensor many chunks long: relaxed under the smallest budget the estimate allows, its buffers inside it (strict ledger). */
    @Test
    void relaxedTensorsStayInsideTheSmallestBudget() throws Exception {
        RandomModels.Builder b = RandomModels.builder().arch(Arch.LLAMA).hidden(256).intermediate(640).layers(1).heads(4).kvHeads(2)
                .vocab(512).maxPositions(64).dtype(DType.BF16).seed(21);
        RandomModels.Family f = RandomModels.family(b, 2, 0.02, dir.resolve("wide"));
        Path act = actMean(f.base(), Architectures.LLAMA, "act-wide");
        Path cfg = Files.writeString(dir.resolve("wide.yml"), configs("ties", f, "dtype: bfloat16\n"));
        List<String> notes = new ArrayList<>();
        Events ev = new Events() {
            @Override public void start(String m, int t, long bi, long bo, String be) {}
            @Override public void tensor(int i, int t, String n, long bi, long bo, double s) {}
            @Override public void note(String message) { notes.add(message); }
            @Override public void done(String o, int t, long bi, long bo, double s, long p, long r) {}
            @Override public void error(String m, int c) {}
        };
        try (JavaBackend java = new JavaBackend(2); Planner.Inputs in = new Planner.Inputs();
             AimRelaxer aim = new AimRelaxer(act, AimRelaxer.Settings.of(0.3), Architectures.LLAMA, false)) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            MemoryBudget.Estimate probe = MemoryBudget.estimate(plan, 1L << 40, true, true, false, true);
            assertTrue(probe.largest().endsWith("in chunks"), "AIM-relaxed tensors are planned in chunks: " + probe.describe());
            MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, probe.smallestBytes(), true, true, false, true);
            long largest = plan.tensors().stream().mapToLong(t -> t.shape().numel()).max().orElseThrow();
            assertTrue(largest > 20 * mem.chunkElements(), "the largest tensor (" + largest + " elements) spans many chunks of " + mem.chunkElements());
            Merger.Result r = Merger.run(plan, in, dir.resolve("wide-out"), Merger.Options.budgeted(java, 1, 1L << 40, true, false, aim, ev, mem));
            assertTrue(notes.stream().noneMatch(n -> n.contains("internal error")), notes.toString());
            assertTrue(r.peakWorkingBytes() <= mem.budget() - MemoryBudget.BASELINE, "working bytes " + r.peakWorkingBytes() + " under " + mem.describe());
            // the relaxation ran: the ties merge without AIM differs
            Merger.Result plain = Merger.run(plan, in, dir.resolve("wide-plain"), Merger.Options.budgeted(java, 1, 1L << 40, true, false, null, ev, mem));
            assertTrue(Files.mismatch(r.output().resolve("model.safetensors"), plain.output().resolve("model.safetensors")) != -1, "AIM had no effect");
            assertEquals(r.peakWorkingBytes(), plain.peakWorkingBytes(), "the relaxation holds no chunk of its own");
        }
    }
}
