package dev.mergeforge.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.DerivedTensors;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkRunner;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.MemoryLedger;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Computed inputs read in chunks (docs/io.md, "Computed inputs"): embeddings and heads permuted to a
 * union vocabulary (own rows, default rows, padding rows) and LoRA-applied weights (an embedding
 * adapter, so a permuted view reads an adapted one) give, through the chunked passes with chunks of
 * one element and of 97 (cutting rows), through the fused pass and through a copy, the bytes of the
 * whole-tensor path that computes them whole; and a computed input many chunks long is held one
 * window at a time, its charge bounded by the chunk, whatever its size.
 */
class DerivedChunksTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path dir;
    static Path a, b, adapter;

    @BeforeAll
    static void models() throws Exception {
        a = model("A", 40, 1, List.of("x", "y", "z", "xy", "<im>"));
        b = model("B", 44, 2, List.of("y", "x", "w", "wx", "q", "<im>", "<tool>"));
        Random r = new Random(9);
        String p = "base_model.model.";
        adapter = Files.createDirectories(dir.resolve("adapter"));
        Files.writeString(adapter.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 3, \"lora_alpha\": 6,"
                + " \"target_modules\": [\"q_proj\", \"embed_tokens\"]}");
        Map<String, long[]> shapes = new java.util.LinkedHashMap<>();
        shapes.put(p + "model.layers.0.self_attn.q_proj.lora_A.weight", new long[] {3, 32});
        shapes.put(p + "model.layers.0.self_attn.q_proj.lora_B.weight", new long[] {32, 3});
        shapes.put(p + "model.embed_tokens.lora_embedding_A", new long[] {3, 44});
        shapes.put(p + "model.embed_tokens.lora_embedding_B", new long[] {32, 3});
        List<SafetensorsWriter.Entry> es = new ArrayList<>();
        shapes.forEach((k, s) -> es.add(new SafetensorsWriter.Entry(k, DType.F32, Shape.of(s))));
        try (SafetensorsWriter w = new SafetensorsWriter(adapter.resolve("adapter_model.safetensors"), es, Map.of("format", "pt"));
             Arena arena = Arena.ofConfined()) {
            for (var e : shapes.entrySet()) {
                long n = e.getValue()[0] * e.getValue()[1];
                MemorySegment s = arena.allocate(4 * n);
                for (long i = 0; i < n; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, (float) (r.nextGaussian() * 0.2));
                w.write(e.getKey(), s);
            }
        }
    }

    /** A bf16 Llama (hidden 32) with {@code rows} embedding rows and a BPE vocabulary of 4 specials, then {@code tokens}. */
    static Path model(String name, int rows, long seed, List<String> tokens) throws Exception {
        Path m = RandomModels.builder().arch(Arch.LLAMA).hidden(32).intermediate(48).layers(1).heads(4).kvHeads(2).vocab(rows)
                .maxPositions(32).dtype(DType.BF16).tieEmbeddings(false).seed(seed).write(dir.resolve(name));
        ObjectNode t = JSON.createObjectNode();
        t.putArray("added_tokens");
        ObjectNode model = t.putObject("model");
        model.put("type", "BPE");
        ObjectNode vocab = model.putObject("vocab");
        List<String> all = new ArrayList<>(List.of("<pad>", "<s>", "</s>", "<unk>"));
        all.addAll(tokens);
        for (int id = 0; id < all.size(); id++) vocab.put(all.get(id), id);
        model.putArray("merges");
        Files.writeString(m.resolve("tokenizer.json"), JSON.writeValueAsString(t));
        Files.writeString(m.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}");
        return m;
    }

    static Merger.Result merge(String name, String yaml, Backend be, long chunk) throws Exception {
        Path cfg = Files.writeString(dir.resolve(name + ".yml"), yaml);
        Path out = dir.resolve(name + "-" + be.name() + "-" + chunk + "-" + System.nanoTime());
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            return Merger.run(plan, in, out, new Merger.Options(be, 3, 1L << 40, true, false, null, Events.NONE, 128, chunk));
        }
    }

    @Test
    void computedInputsInChunksWriteTheWholeTensorPathsBytes() throws Exception {
        String models = "base_model: %1$s\nmodels:\n  - model: %1$s\n    parameters: {weight: 0.4, density: 0.5}\n"
                + "  - model: %2$s+%3$s\n    parameters: {weight: 0.7, density: 0.6}\n";
        String tok = "tokenizer:\n  source: union\n  pad_to_multiple_of: 8\n  tokens:\n    <im>: {source: {kind: zero}, force: true}\n";
        String[][] cases = {
                {"ties", "merge_method: ties\n" + models + tok + "dtype: bfloat16\n"},
                {"linear", "merge_method: linear\n" + models.replace(", density: 0.5", "").replace(", density: 0.6", "") + tok + "dtype: float32\n"},
                // one model: every tensor is copied, the permuted and adapted ones computed into the writer
                {"copy", "merge_method: passthrough\nmodels:\n  - model: %2$s+%3$s\n" + tok}};
        try (JavaBackend java = new JavaBackend(2)) {
            List<Backend> streams = new ArrayList<>(List.of(java));
            NativeBackend nat = NativeBackend.isAvailable() ? new NativeBackend(2) : null;
            if (nat != null) streams.add(nat);
            try {
                for (String[] c : cases) {
                    String yaml = c[1].formatted(a, b, adapter);
                    Merger.Result ref = merge(c[0], yaml, ChunkedMergeTest.tilesOnly(java), Merger.STREAM_CHUNK);
                    for (Backend be : streams) {
                        for (long chunk : be == java ? new long[] {1, 97} : new long[] {97}) FusedChunksTest.sameFiles(ref.output(), merge(c[0], yaml, be, chunk).output());
                    }
                }
            } finally {
                if (nat != null) nat.close();
            }
        }
    }

    /**
     * A permuted view that reads an adapted one (B's embedding with its LoRA adapter, in the union
     * vocabulary), checked against W + s·(B·A)ᵀ computed here: its own rows are the adapted rows,
     * in chunks and whole. (Computing the adapted view once per read-ahead and dropping it after its
     * first reader gave the next permuted view zeros.)
     */
    @Test
    void aPermutedAdaptedEmbeddingHoldsTheAdaptedRows() throws Exception {
        String yaml = ("merge_method: linear\nmodels:\n  - model: %1$s\n    parameters: {weight: 0.0}\n"
                + "  - model: %2$s+%3$s\n    parameters: {weight: 1.0}\ntokenizer:\n  source: union\ndtype: float32\n").formatted(a, b, adapter);
        String emb = "model.embed_tokens.weight", p = "base_model.model.model.embed_tokens.";
        double[] w = MergeFixtures.values(b, emb), la, lb;
        try (dev.mergeforge.io.SafetensorsFile f = dev.mergeforge.io.SafetensorsFile.open(adapter.resolve("adapter_model.safetensors"))) {
            la = MergeFixtures.values(f.tensor(p + "lora_embedding_A"));
            lb = MergeFixtures.values(f.tensor(p + "lora_embedding_B"));
        }
        // union ids of x (B's row 5) and w (B's row 6, a token only B has)
        int[][] rows = {{4, 5}, {9, 6}};
        try (JavaBackend java = new JavaBackend(2)) {
            for (Backend be : List.of(java, ChunkedMergeTest.tilesOnly(java))) {
                Path out = merge("adapted-rows", yaml, be, 97).output();
                double[] got = MergeFixtures.values(out, emb);
                for (int[] r : rows) {
                    for (int j = 0; j < 32; j++) {
                        // W[r, j] + (6/3)·Σ_k A[k, r]·B[j, k], rounded to B's bf16
                        double d = w[r[1] * 32 + j];
                        for (int k = 0; k < 3; k++) d += 2.0 * la[k * 44 + r[1]] * lb[j * 3 + k];
                        double want = dev.mergeforge.tensor.Floats.bf16ToFloat(dev.mergeforge.tensor.Floats.floatToBf16((float) d));
                        assertEquals(want, got[r[0] * 32 + j], 1e-7, be.name() + ": union row " + r[0] + " column " + j);
                    }
                }
            }
        }
    }

    /**
     * Permuted and adapted inputs through the chunked passes (ties) and the fused pass (linear on
     * native) at the smallest budget the estimate allows, under the strict ledger (assertions are on
     * in the suite): every window a computed input takes is charged, so a window the estimate does not
     * count is an internal error out of the merge. The bytes are those of the whole-tensor path.
     */
    @Test
    void computedInputsMergeWithinTheSmallestBudgetTheEstimateAllows() throws Exception {
        String models = "base_model: %1$s\nmodels:\n  - model: %1$s\n    parameters: {weight: 0.4, density: 0.5}\n"
                + "  - model: %2$s+%3$s\n    parameters: {weight: 0.7, density: 0.6}\n";
        String tok = "tokenizer:\n  source: union\n  pad_to_multiple_of: 8\n";
        String[][] cases = {
                {"ties-budget", "merge_method: ties\n" + models + tok + "dtype: bfloat16\n"},
                {"linear-budget", "merge_method: linear\n" + models.replace(", density: 0.5", "").replace(", density: 0.6", "") + tok + "dtype: float32\n"}};
        try (JavaBackend java = new JavaBackend(1)) {
            List<Backend> backends = new ArrayList<>(List.of(java));
            NativeBackend nat = NativeBackend.isAvailable() ? new NativeBackend(1) : null;
            if (nat != null) backends.add(nat);
            try {
                for (String[] c : cases) {
                    String yaml = c[1].formatted(a, b, adapter);
                    Merger.Result ref = merge(c[0], yaml, ChunkedMergeTest.tilesOnly(java), Merger.STREAM_CHUNK);
                    Path cfg = Files.writeString(dir.resolve(c[0] + ".yml"), yaml);
                    for (Backend be : backends) {
                        try (Planner.Inputs in = new Planner.Inputs()) {
                            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
                            boolean fuses = be != java;
                            MemoryBudget.Estimate probe = MemoryBudget.estimate(plan, 1L << 40, true, true, fuses, false);
                            MemoryBudget.Estimate mem = MemoryBudget.estimate(plan, probe.smallestBytes(), true, true, fuses, false);
                            Path out = dir.resolve(c[0] + "-smallest-" + be.name());
                            Merger.run(plan, in, out, Merger.Options.budgeted(be, 1, 1L << 40, true, false, null, Events.NONE, mem));
                            FusedChunksTest.sameFiles(ref.output(), out);
                        }
                    }
                }
            } finally {
                if (nat != null) nat.close();
            }
        }
    }

    /** A permuted view 64 chunks long read by the chunked passes: one window at a time, the charge bounded by the chunk. */
    @Test
    void aComputedInputIsHeldOneChunkAtATime() {
        long rows = 4096, cols = 256, n = rows * cols, chunk = n / 64;
        Parallel par = new Parallel(1);
        try (DerivedTensors d = new DerivedTensors(); TilePool pool = new TilePool(Long.MAX_VALUE, t -> { }, false)) {
            MemorySegment stored = MemorySegment.ofArray(new float[(int) n]);
            for (long i = 0; i < n; i++) stored.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) Math.sin(i));
            TensorView src = new TensorView("src", DType.F32, Shape.of(rows, cols), stored, "mem");
            // rows reversed, gathered from the source on demand
            TensorView rev = d.create("rev", DType.F32, Shape.of(rows, cols), "test", (from, count, dst) -> {
                for (long e = from; e < from + count; e++) {
                    long r = e / cols, c = e % cols;
                    dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, e - from, stored.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, (rows - 1 - r) * cols + c));
                }
            });
            MemoryLedger ledger = new MemoryLedger(Long.MAX_VALUE, m -> { }, true);
            DerivedReads reads = new DerivedReads(d, ledger, chunk);
            double[] sum = {0};
            ChunkProgram copy = new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.add(c.model(0), c.model(0), out));
            try (ChunkRunner r = new ChunkRunner(new JavaChunkOps(par), copy, null, List.of(rev), Shape.of(rows, cols), chunk, pool,
                    ChunkRunner.Reads.NONE, reads)) {
                for (long k = 0; k < r.chunks(); k++) {
                    Tile out = r.combine(k);
                    for (long i = 0; i < out.size(); i++) {
                        long e = k * chunk + i, want = (rows - 1 - e / cols) * cols + e % cols;
                        assertEquals(2 * src.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, want), out.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i));
                        sum[0]++;
                    }
                }
            }
            assertEquals(n, sum[0]);
            assertTrue(ledger.peak() <= chunk * 4 + 8192, "one window of " + chunk * 4 + " bytes at a time, not the view's " + n * 4 + ": peak " + ledger.peak());
            reads.release(List.of(rev));
            assertEquals(0, ledger.held());
        } finally {
            par.shutdown();
        }
    }
}
