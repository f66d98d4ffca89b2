package dev.mergeforge.run;

import dev.mergeforge.backend.HostChunkOps;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.StreamingWriter;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tokenizer.PermutedEmbeddings;
import dev.mergeforge.merge.CombinationMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;

import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * The memory a merge may use ({@code --max-memory}) and what the merge does with it
 * (docs/io.md, "Memory budget"): the chunk size of the methods that run as passes over chunks
 * follows from the budget; tensors that still take the whole-tensor path need their tiles whole.
 * The peak is predicted as the fixed part (the JVM and libraries, the writer's two blocks) plus the
 * largest per-tensor working set; a budget below the smallest workable one is a one-line error
 * naming it. Sizes are {@code long} throughout.
 */
public final class MemoryBudget {
    /**
     * The JVM, code, the native library, histograms and other small state, with the launcher's 32 MB young
     * generation: a tiny merge peaks at 100 MiB (BENCHMARKS.md, "The budget's fixed part"), so a quarter of margin.
     */
    public static final long BASELINE = 128L << 20;
    /** The writer's two blocks. */
    public static final long WRITER = 2 * StreamingWriter.BLOCK;
    /** Fewest elements per chunk (or one row, for methods that work per row). */
    public static final long MIN_CHUNK = 4096;
    /** Most elements per chunk: larger chunks gain nothing. */
    public static final long MAX_CHUNK = 16L << 20;

    private MemoryBudget() {}

    /**
     * What a merge under a budget does.
     *
     * @param budget        the bytes allowed
     * @param fromUser      whether --max-memory set it (else the machine default)
     * @param raised        whether the default was too small and was raised to the smallest that works
     * @param chunkElements elements per chunk of a chunked method
     * @param peakBytes     predicted peak resident memory
     * @param smallestBytes the smallest budget this merge runs under
     * @param largest       the tensor whose working set sets the peak, and its path
     * @param heldBytes     bytes a chunked tensor's program holds outside the budget (RegMean's Grams), in the peak
     * @param heldBy        the tensor holding the most of them, or null
     */
    public record Estimate(long budget, boolean fromUser, boolean raised, long chunkElements, long peakBytes, long smallestBytes, String largest,
                           long heldBytes, String heldBy) {
        /** Without bytes held outside the budget. */
        public Estimate(long budget, boolean fromUser, boolean raised, long chunkElements, long peakBytes, long smallestBytes, String largest) {
            this(budget, fromUser, raised, chunkElements, peakBytes, smallestBytes, largest, 0, null);
        }

        /** One line for the log and the plan. */
        public String describe() {
            String line = String.format(Locale.ROOT, "memory budget %s (%s); chunks of %d elements; predicted peak %s (largest: %s)",
                    gb(budget), fromUser ? "--max-memory" : raised ? "default, raised to the smallest that works" : "default: a quarter of RAM, at most 2 GiB", chunkElements, gb(peakBytes), largest);
            if (heldBytes == 0) return line;
            return line + String.format(Locale.ROOT, "; outside the budget and in the peak: %s of RegMean Grams in float64 (largest: %s; docs/data-informed.md, \"Memory\")",
                    heldBytes < 100_000_000 ? String.format(Locale.ROOT, "%.1f MB", heldBytes / 1e6) : gb(heldBytes), heldBy);
        }
    }

    static String gb(long b) { return String.format(Locale.ROOT, "%.2f GB", b / 1e9); }

    /** The default: a quarter of physical memory, between 512 MiB and 2 GiB. */
    public static long defaultBytes() {
        long ram = physical();
        return Math.max(512L << 20, Math.min(2L << 30, ram / 4));
    }

    /**
     * The page cache a merge under {@code budget} leaves for re-reading its inputs: the memory
     * available now (Linux's MemAvailable: free plus reclaimable cache; physical memory where it is
     * unknown) less the budget (at most 0 when the budget claims it all). On a machine other
     * processes share, physical memory overstated it. A multi-pass tensor whose inputs exceed it reads
     * them from disk again on every pass after the first.
     */
    public static long pageCacheRoom(long budget) { return Math.min(physical(), available()) - budget; }

    /** MemAvailable from /proc/meminfo, or {@code Long.MAX_VALUE} where it cannot be read. */
    static long available() {
        try (java.util.stream.Stream<String> lines = java.nio.file.Files.lines(java.nio.file.Path.of("/proc/meminfo"))) {
            return lines.filter(l -> l.startsWith("MemAvailable:")).findFirst()
                    .map(l -> Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024).orElse(Long.MAX_VALUE);
        } catch (java.io.IOException | RuntimeException e) {
            return Long.MAX_VALUE;
        }
    }

    /** Physical memory of the machine (8 GiB where the JVM cannot tell). */
    public static long physical() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) return os.getTotalMemorySize();
        return 8L << 30;
    }

    /**
     * The estimate for {@code plan} under {@code budget}. With a budget from the user that cannot run
     * the merge, a {@link ConfigException} naming the smallest that can; the default budget is raised to
     * it instead (the log says so).
     *
     * @param streams whether the backend runs chunked methods in chunks (every backend does since CUDA has chunk ops)
     * @param fuses   whether the backend fuses linear / task_arithmetic (false: the Java reference merges them whole)
     * @param aim     whether AIM relaxes tensors (a relaxed tensor's chunks hold whole rows)
     */
    public static Estimate estimate(Planner.Plan plan, long budget, boolean fromUser, boolean streams, boolean fuses, boolean aim) {
        return estimate(plan, budget, fromUser, streams, fuses, aim, false);
    }

    /**
     * As above; {@code deviceSolves}: the backend solves RegMean's systems on its device (CUDA's dense
     * solver), so RegMean's Linear weights keep the whole-tensor path ({@link Merger#chunked}).
     */
    public static Estimate estimate(Planner.Plan plan, long budget, boolean fromUser, boolean streams, boolean fuses, boolean aim,
                                    boolean deviceSolves) {
        long fixed = BASELINE + WRITER;
        MethodSpec spec = plan.config().method();
        // the whole-tensor path: inputs, base, output and two scratch tiles, plus statistics
        long tiles = 0, perElement = 0, minChunkBytes = 0, sources = 0;
        String tileName = null, chunkName = null;
        for (PlannedTensor t : plan.tensors()) {
            if (t.copyOnly()) continue;
            if (fused(t, spec, fuses)) {
                // the fused pass: each input's current and next chunk in the two slots, and the next tensor's first chunk the read-ahead stages
                // with computed inputs: a window of each computed input and the stored ones' pages of the same elements instead of
                // staged chunks (two of the three), and the stored source pages a window's computation maps
                long b = 3L * (t.inputs().size() + 1) * InputChunks.CHUNK * maxInputBytes(t) + computedSources(t);
                if (b > tiles) { tiles = b; tileName = t.name() + (computedSources(t) > 0 ? ", fused: computed input windows" : ", fused: staged input chunks"); }
            } else if (chunked(t, spec, streams, fuses, deviceSolves)) {
                long pe = perElement(t, spec);
                if (pe > perElement) { perElement = pe; chunkName = t.name(); }
                long min = pe * Math.max(MIN_CHUNK, row(t, spec, aim));
                minChunkBytes = Math.max(minChunkBytes, min + computedSources(t));
                sources = Math.max(sources, computedSources(t));
            } else {
                long b = (t.inputs().size() + 3L) * t.shape().numel() * 4L;
                for (TensorView s : t.stats()) b += s.numel() * 4L;
                if (b > tiles) { tiles = b; tileName = t.name() + ", whole-tensor tiles"; }
            }
        }
        long smallest = fixed + Math.max(tiles, minChunkBytes);
        long use = budget;
        if (budget < smallest) {
            if (fromUser) {
                throw new ConfigException("--max-memory " + gb(budget) + " is too small for this merge: it needs at least " + gb(smallest)
                        + (tiles >= minChunkBytes && tileName != null ? " (tensor " + tileName + ")" : "")
                        + "; raise --max-memory to " + (smallest + (1L << 20) - 1) / (1L << 20) + "MiB or more");
            }
            use = smallest;
        }
        long chunk = perElement == 0 ? MAX_CHUNK : Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, (use - fixed - sources) / perElement));
        // a tensor smaller than a chunk is one chunk of its own size; host backends cut at most HostChunkOps.HOST_CHUNK
        // elements a chunk whatever the budget allows, a device the budget's chunk
        long chunkBytes = 0;
        for (PlannedTensor t : plan.tensors()) {
            if (t.copyOnly() || !chunked(t, spec, streams, fuses, deviceSolves)) continue;
            long r = row(t, spec, aim), wanted = Math.max(chunk, r);
            long elements = deviceSolves ? wanted : HostChunkOps.capped(wanted, r);
            long b = perElement(t, spec) * Math.min(t.shape().numel(), elements) + computedSources(t);
            if (b > chunkBytes) { chunkBytes = b; chunkName = t.name(); }
        }
        // bytes a program holds whatever its chunks (RegMean's Grams): outside the budget, added to the peak
        long held = 0;
        String heldBy = null;
        for (PlannedTensor t : plan.tensors()) {
            if (t.copyOnly() || !chunked(t, spec, streams, fuses, deviceSolves)) continue;
            long h = program(t, spec).heldBytes();
            if (h > held) { held = h; heldBy = t.name(); }
        }
        long peak = fixed + Math.max(tiles, chunkBytes) + held;
        String largest = tiles >= chunkBytes ? (tileName == null ? "nothing to merge" : tileName) : chunkName + ", in chunks";
        return new Estimate(use, fromUser, use > budget, deviceSolves ? chunk : Math.min(chunk, HostChunkOps.HOST_CHUNK), peak, smallest, largest, held, heldBy);
    }

    private static boolean fused(PlannedTensor t, MethodSpec spec, boolean fuses) {
        return fuses && t.stats().isEmpty() && spec.factory().create(t.global()) instanceof CombinationMethod;
    }

    private static boolean chunked(PlannedTensor t, MethodSpec spec, boolean streams, boolean fuses, boolean deviceSolves) {
        if (deviceSolves && spec.stats() == MethodSpec.Stats.GRAM && !t.stats().isEmpty()) return false;
        return streams && !fused(t, spec, fuses) && program(t, spec) != null;
    }

    /**
     * Bytes per element of a chunked tensor: a float32 chunk per input, base, streamed statistic,
     * scratch tile of its program (at least one) and output, the staged output, one input's mapped
     * pages and what the program holds per element beside its tiles.
     */
    private static long perElement(PlannedTensor t, MethodSpec spec) {
        ChunkProgram p = program(t, spec);
        boolean stats = p != null && p.elementStats();
        long mapped = maxInputBytes(t);
        if (stats) for (TensorView v : t.stats()) mapped = Math.max(mapped, v.dtype().byteSize());
        return 4L * (t.inputs().size() + (t.base() == null ? 0 : 1) + (stats ? t.stats().size() : 0) + 1 + Math.max(1, scratchTiles(t, spec)))
                + t.outDtype().byteSize() + mapped + (p == null ? 0 : p.hostBytesPerElement()) + computedBytes(t);
    }

    /**
     * Bytes per element of the tensor's computed inputs (permuted embeddings, LoRA-applied weights):
     * each holds one chunk-sized window of its dtype while the passes read it (io.DerivedTensors),
     * and the stored source rows it is computed from are mapped in while the window is computed
     * (about as many bytes again; dropped after). A computed view is the one kind of input whose
     * bytes are not a file mapping.
     */
    private static long computedBytes(PlannedTensor t) {
        java.util.Set<TensorView> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        long b = 0;
        for (TensorView v : t.inputs()) if (!v.data().isMapped() && seen.add(v)) b += 2L * v.dtype().byteSize();
        if (t.base() != null && !t.base().data().isMapped() && seen.add(t.base())) b += 2L * t.base().dtype().byteSize();
        return b;
    }

    /**
     * Bytes of stored source rows a computed input's window keeps mapped while it is computed, beyond
     * what {@link #computedBytes} counts per element: a permuted view gathers rows from anywhere in its
     * sources, and the kernel maps the pages around each (fault-around) until the gather drops them,
     * every {@code PermutedEmbeddings.DROP_ROWS} rows. One window is computed at a time. Zero without
     * computed inputs.
     */
    static long computedSources(PlannedTensor t) {
        long rowBytes = 0;
        for (TensorView v : t.inputs()) if (!v.data().isMapped()) rowBytes = Math.max(rowBytes, Math.max(1, v.shape().cols()) * v.dtype().byteSize());
        if (t.base() != null && !t.base().data().isMapped()) rowBytes = Math.max(rowBytes, Math.max(1, t.base().shape().cols()) * t.base().dtype().byteSize());
        return rowBytes == 0 ? 0 : PermutedEmbeddings.mappedSourceBytes(rowBytes);
    }

    /** The scratch chunks the tensor's program asks for. */
    private static int scratchTiles(PlannedTensor t, MethodSpec spec) {
        ChunkProgram p = program(t, spec);
        return p == null ? 0 : p.scratch();
    }

    /**
     * The fewest elements a chunk of the tensor holds: a row, or the program's alignment when larger
     * (columns of a 3-D tensor); under AIM, a tensor with a base (relaxed in whole rows) a multiple of both.
     */
    private static long row(PlannedTensor t, MethodSpec spec, boolean aim) {
        ChunkProgram p = program(t, spec);
        long align = p == null ? 1 : p.align(), cols = Math.max(1, t.shape().cols());
        if (aim && t.base() != null && t.shape().rank() > 1) return Math.multiplyExact(align / gcd(align, cols), cols);
        return Math.max(cols, align);
    }

    private static long gcd(long a, long b) { return b == 0 ? a : gcd(b, a % b); }

    /** The tensor's passes, or null where it cannot be planned (the merge reports why) or the method has none (the tile path). */
    private static ChunkProgram program(PlannedTensor t, MethodSpec spec) {
        try {
            if (!(spec.factory().create(t.global()) instanceof ChunkedMethod m)) return null;
            return m.program(new TensorSetup(t.name(), t.shape(), t.params(), t.baseIndex(), t.base() != null, 0, note -> { }, t.stats()));
        } catch (ConfigException e) {
            return null;
        }
    }

    private static long maxInputBytes(PlannedTensor t) {
        long b = t.base() == null ? 0 : t.base().dtype().byteSize();
        for (TensorView v : t.inputs()) b = Math.max(b, v.dtype().byteSize());
        return b;
    }
}
