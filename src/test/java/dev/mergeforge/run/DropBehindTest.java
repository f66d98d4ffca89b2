package dev.mergeforge.run;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.DropMode;
import dev.mergeforge.io.PageCache;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Drop-behind (docs/io.md, "Inputs larger than memory"): the ranges a merge reports consumed cover
 * every input byte it read, on the fused, chunked and tile paths; a multi-pass tensor keeps its
 * keep window cached until its last pass; bytes a later tensor reads again are kept; AUTO drops
 * nothing when the inputs fit in the room; the merged files are the same bytes whatever the mode;
 * and with the real page cache the inputs are no longer resident after the merge.
 */
class DropBehindTest {
    @TempDir static Path dir;
    static RandomModels.Family f;

    @BeforeAll
    static void models() {
        // tensors of several pages each (embeddings 512 x 128 bf16: 32 pages), so that whole pages are dropped
        RandomModels.Builder b = RandomModels.builder().arch(Arch.LLAMA).hidden(128).intermediate(320).layers(2).heads(4).kvHeads(2)
                .vocab(512).maxPositions(64).dtype(DType.BF16).shards(2).seed(11);
        f = RandomModels.family(b, 2, 0.02, dir.resolve("models"));
    }

    /** One consumed range, as the merge reported it. */
    record Drop(Path file, String tensor, long fromByte, long length) {}

    static final class Recorder implements DropBehind.Evictor {
        final List<Drop> drops = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void evict(Checkpoint from, TensorView v, long fromByte, long length) {
            drops.add(new Drop(from.dir(), v.name(), fromByte, length));
        }
    }

    static String config(String method) {
        Path ft1 = f.fineTunes().get(0), ft2 = f.fineTunes().get(1);
        return switch (method) {
            case "slerp" -> "merge_method: slerp\nbase_model: " + f.base() + "\nmodels:\n  - model: " + f.base() + "\n  - model: " + ft1
                    + "\nparameters: {t: 0.3}\ndtype: bfloat16\n";
            default -> "merge_method: " + method + "\nbase_model: " + f.base() + "\nmodels:\n  - model: " + ft1
                    + "\n    parameters: {weight: 0.7, density: 0.4}\n  - model: " + ft2 + "\n    parameters: {weight: 0.5, density: 0.6}\ndtype: bfloat16\n";
        };
    }

    static Path merge(String name, String yaml, Backend be, long chunk, long room, DropBehind.Settings s) throws Exception {
        Path cfg = Files.writeString(dir.resolve(name + ".yml"), yaml);
        Path out = dir.resolve(name + "-" + be.name() + "-" + s.mode() + "-" + System.nanoTime());
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            Merger.run(plan, in, out, new Merger.Options(be, 3, 1L << 40, true, false, null, Events.NONE, 1000, chunk, room, s));
        }
        return out;
    }

    static Map<String, byte[]> files(Path out) throws Exception {
        Map<String, byte[]> m = new TreeMap<>();
        try (Stream<Path> s = Files.list(out)) {
            for (Path p : s.filter(p -> p.toString().endsWith(".safetensors")).toList()) m.put(p.getFileName().toString(), Files.readAllBytes(p));
        }
        return m;
    }

    @Test
    void everyInputByteIsReportedAndTheOutputIsTheSame() throws Exception {
        // the fused path (task_arithmetic on native), the chunked path (ties), the tile path (slerp without chunk ops)
        List<Object[]> runs = new ArrayList<>(List.of(new Object[] {"ties", new JavaBackend()},
                new Object[] {"slerp", ChunkedMergeTest.tilesOnly(new JavaBackend())}));
        if (NativeBackend.isAvailable()) {
            runs.add(new Object[] {"task_arithmetic", new NativeBackend(2)});
            runs.add(new Object[] {"ties", new NativeBackend(2)});
        }
        for (Object[] run : runs) {
            String method = (String) run[0];
            Backend be = (Backend) run[1];
            {
                Recorder never = new Recorder(), always = new Recorder();
                Path a = merge(method, config(method), be, 1500, 0, new DropBehind.Settings(DropMode.NEVER, never));
                Path b = merge(method, config(method), be, 1500, 0, new DropBehind.Settings(DropMode.ALWAYS, always));
                Map<String, byte[]> fa = files(a), fb = files(b);
                assertEquals(fa.keySet(), fb.keySet());
                for (String k : fa.keySet()) assertArrayEquals(fa.get(k), fb.get(k), method + " on " + be.name() + ": " + k);
                assertTrue(never.drops.isEmpty(), "NEVER dropped " + never.drops.size() + " ranges");
                assertCovered(always.drops, method + " on " + be.name(), method.equals("slerp") ? List.of(f.base(), f.fineTunes().get(0))
                        : List.of(f.base(), f.fineTunes().get(0), f.fineTunes().get(1)));
            }
        }
    }

    /** Every float tensor of every listed model is covered, byte for byte, by the union of the reported ranges. */
    static void assertCovered(List<Drop> drops, String what, List<Path> models) {
        Map<String, List<long[]>> by = new HashMap<>();
        for (Drop d : drops) by.computeIfAbsent(d.file() + "|" + d.tensor(), k -> new ArrayList<>()).add(new long[] {d.fromByte(), d.fromByte() + d.length()});
        for (Path m : models) {
            try (Checkpoint c = Checkpoint.open(m)) {
                for (String n : c.names()) {
                    long size = c.tensor(n).data().byteSize();
                    List<long[]> rs = by.getOrDefault(c.dir() + "|" + n, List.of());
                    rs.sort((x, y) -> Long.compare(x[0], y[0]));
                    long covered = 0;
                    for (long[] r : rs) if (r[0] <= covered) covered = Math.max(covered, r[1]);
                    assertEquals(size, covered, what + ": bytes of " + n + " in " + m.getFileName() + " not all reported consumed");
                }
            }
        }
    }

    @Test
    void aMultiPassTensorKeepsItsWindowUntilItsLastPass() throws Exception {
        // ties: a histogram pass, then the combine pass. Room 0 keeps nothing: every chunk is dropped
        // behind both passes; unbounded room keeps everything until the combine pass drops it.
        String tensor = "model.embed_tokens.weight";
        long chunk = 4096, numel = 512L * 128, chunks = (numel + chunk - 1) / chunk;
        Recorder none = new Recorder(), all = new Recorder();
        merge("ties-window", config("ties"), new JavaBackend(), chunk, 0, new DropBehind.Settings(DropMode.ALWAYS, none));
        merge("ties-window", config("ties"), new JavaBackend(), chunk, Long.MAX_VALUE, new DropBehind.Settings(DropMode.ALWAYS, all));
        long bytes = numel * 2;
        long dropsWithoutRoom = chunkDrops(none, tensor, f.fineTunes().get(0), bytes);
        long passes = dropsWithoutRoom / chunks; // the reduction passes and the combine pass
        assertEquals(0, dropsWithoutRoom % chunks, "room 0: every chunk dropped after every pass");
        assertTrue(passes >= 2, "ties reads its inputs in more than one pass, got " + passes);
        assertEquals(chunks, chunkDrops(all, tensor, f.fineTunes().get(0), bytes), "unbounded room: each chunk dropped once, by the last pass");
        // a window of half the tensor (8 of 16 chunks): its first half is dropped by the last pass only, the second half by every pass
        long perElement = 3 * 2; // base and two fine-tunes, bf16
        Recorder half = new Recorder();
        merge("ties-window", config("ties"), new JavaBackend(), chunk, numel / 2 * perElement, new DropBehind.Settings(DropMode.ALWAYS, half));
        assertEquals(chunks / 2 + passes * (chunks / 2), chunkDrops(half, tensor, f.fineTunes().get(0), bytes));
    }

    /** Reported ranges of one tensor of one model other than the whole-tensor sweep at its end. */
    static long chunkDrops(Recorder r, String tensor, Path model, long wholeBytes) {
        return r.drops.stream().filter(d -> d.tensor().equals(tensor) && d.file().equals(model.toAbsolutePath().normalize())
                && d.length() < wholeBytes).count();
    }

    @Test
    void autoDropsOnlyWhenTheInputsExceedTheRoom() throws Exception {
        Recorder fits = new Recorder(), exceeds = new Recorder();
        Path a = merge("auto", config("ties"), new JavaBackend(), 2048, 1L << 40, new DropBehind.Settings(DropMode.AUTO, fits));
        Path b = merge("auto", config("ties"), new JavaBackend(), 2048, 1 << 20, new DropBehind.Settings(DropMode.AUTO, exceeds));
        assertTrue(fits.drops.isEmpty(), "inputs that fit stay cached for the next merge");
        assertTrue(!exceeds.drops.isEmpty(), "inputs larger than the room are dropped");
        assertEquals(files(a).keySet(), files(b).keySet());
        for (var e : files(a).entrySet()) assertArrayEquals(e.getValue(), files(b).get(e.getKey()));
    }

    @Test
    void bytesALaterTensorReadsAgainAreKeptUntilThen() throws Exception {
        // passthrough slices reading layer 0 of the base twice: its tensors must not be dropped by the first copy
        String yaml = "merge_method: passthrough\nslices:\n  - sources:\n      - model: " + f.base() + "\n        layer_range: [0, 1]\n"
                + "  - sources:\n      - model: " + f.base() + "\n        layer_range: [0, 2]\ndtype: bfloat16\n";
        Recorder r = new Recorder();
        Path cfg = Files.writeString(dir.resolve("twice.yml"), yaml);
        try (Planner.Inputs in = new Planner.Inputs()) {
            Planner.Plan plan = Planner.plan(ConfigReader.read(cfg), in);
            DropBehind d = new DropBehind(plan, in, new DropBehind.Settings(DropMode.ALWAYS, r), 0);
            List<PlannedTensor> ts = plan.tensors();
            int first = -1, second = -1;
            String name = "model.layers.0.self_attn.q_proj.weight";
            for (int i = 0; i < ts.size(); i++) {
                if (ts.get(i).inputs().getFirst().name().equals(name)) {
                    if (first < 0) first = i;
                    else second = i;
                }
            }
            assertTrue(first >= 0 && second > first, "the plan reads " + name + " twice");
            TensorView v = ts.get(first).inputs().getFirst();
            d.consumed(first, v, 0, v.data().byteSize());
            d.finished(first);
            assertTrue(r.drops.stream().noneMatch(x -> x.tensor().equals(name)), "dropped before its second read: " + r.drops);
            d.finished(second);
            assertEquals(1, r.drops.stream().filter(x -> x.tensor().equals(name)).count());
        }
    }

    @Test
    void thePageCacheNoLongerHoldsTheInputsAfterAMergeThatDropsThem() throws Exception {
        assumeTrue(PageCache.canDrop(), "posix_fadvise is not available here");
        List<Path> files = new ArrayList<>();
        for (Path m : List.of(f.base(), f.fineTunes().get(0), f.fineTunes().get(1))) {
            try (Stream<Path> s = Files.list(m)) {
                files.addAll(s.filter(p -> p.toString().endsWith(".safetensors")).toList());
            }
        }
        long total = 0;
        for (Path p : files) total += Files.size(p);
        for (Path p : files) Files.readAllBytes(p); // cached, as right after the models were written
        long before = 0;
        for (Path p : files) before += PageCache.residentBytes(p);
        assumeTrue(before > total / 2, "the page cache did not keep the inputs at all (memory pressure): nothing to measure");
        merge("resident", config("ties"), new JavaBackend(), 4096, 0, new DropBehind.Settings(DropMode.ALWAYS, DropBehind.PAGE_CACHE));
        long after = 0, tensors = 0;
        for (Path m : List.of(f.base(), f.fineTunes().get(0), f.fineTunes().get(1))) {
            try (Checkpoint c = Checkpoint.open(m)) {
                tensors += c.names().size();
            }
        }
        for (Path p : files) after += PageCache.residentBytes(p);
        // what may stay: each file's header page(s) and the pages two tensors share
        long allowed = files.size() * 3 * 4096L + tensors * 4096L;
        assertTrue(after <= allowed, "resident after the merge: " + after + " of " + total + " bytes (allowed " + allowed + ")");
    }
}
