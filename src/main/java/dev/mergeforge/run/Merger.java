package dev.mergeforge.run;

import dev.mergeforge.aim.AimRelaxer;
import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.NonFinite;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.io.Madvise;
import dev.mergeforge.io.OutputDir;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.io.ShardPlan;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.CombinationMethod;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MergeMethod;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.HostArrays;
import dev.mergeforge.merge.chunk.ChunkRunner;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.MemoryLedger;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The streaming merge: one output tensor at a time, in plan order. For each tensor the inputs are
 * converted from their mapped files into pooled float32 tiles, the method merges them, AIM relaxes
 * the result if asked, and the result is stored straight into its slot of the output shard. In
 * memory at once: this tensor's inputs and working tiles, never the model. While a tensor merges,
 * a second thread pulls the next tensor's pages in from disk and hands them to the backend's
 * {@code prefetch} (the CUDA backend starts copying them to the GPU); finished inputs are dropped
 * from this process's resident memory. The tile pool tells the backend of every release, so a
 * backend that keeps its own copies of tiles forgets them before the memory is borrowed again.
 *
 * <p>Two paths skip the whole-tensor tiles: a tensor the backend fuses (linear, task arithmetic on
 * native / CUDA) is one pass over its stored bytes, and a tensor of a {@link ChunkedMethod} (on a
 * backend with chunk ops) runs as its method's passes over chunks ({@link ChunkRunner}), the
 * combine pass writing into the writer; its chunk size comes from {@link Options#streamChunk},
 * which the CLI derives from {@code --max-memory} ({@link MemoryBudget}).
 *
 * <p>The merged bytes go to a {@link TensorSink}: the output folder's shard writers
 * ({@link ShardWriters}), or memory ({@link MemoryModel}, {@link #runInMemory}) for a candidate
 * evaluated without a checkpoint. The sink does not change a byte of the result.
 */
public final class Merger {

    /**
     * How to run a merge. {@code maxShardBytes}: the output shard size limit; {@code fusedChunk}:
     * elements per chunk in which fused tensors read their inputs.
     */
    public record Options(Backend backend, long seed, long maxShardBytes, boolean overwrite, boolean allowNonFinite,
                          AimRelaxer aim, Events events, long fusedChunk, long streamChunk, long pageCacheRoom, DropBehind.Settings drop,
                          long bufferAllowance) {
        public Options {
            if (bufferAllowance < 0) throw new IllegalArgumentException("buffer allowance of " + bufferAllowance + " bytes");
            if (fusedChunk < 1 || streamChunk < 1) throw new IllegalArgumentException("chunks of " + fusedChunk + " / " + streamChunk + " elements");
            java.util.Objects.requireNonNull(drop, "drop-behind settings");
        }

        /** Without a buffer allowance ({@link MemoryLedger}: counted, never past a limit). */
        public Options(Backend backend, long seed, long maxShardBytes, boolean overwrite, boolean allowNonFinite, AimRelaxer aim, Events events,
                       long fusedChunk, long streamChunk, long pageCacheRoom, DropBehind.Settings drop) {
            this(backend, seed, maxShardBytes, overwrite, allowNonFinite, aim, events, fusedChunk, streamChunk, pageCacheRoom, drop, Long.MAX_VALUE);
        }

        /**
         * What a merge under a memory budget runs with: chunks from its estimate, the page cache room it
         * leaves, and its buffers counted against the budget less the fixed part ({@link MemoryLedger}).
         */
        public static Options budgeted(Backend backend, long seed, long maxShardBytes, boolean overwrite, boolean allowNonFinite, AimRelaxer aim,
                                       Events events, MemoryBudget.Estimate mem) {
            return new Options(backend, seed, maxShardBytes, overwrite, allowNonFinite, aim, events, FUSED_CHUNK, mem.chunkElements(),
                    MemoryBudget.pageCacheRoom(mem.budget()), DropBehind.Settings.configured(), mem.budget() - MemoryBudget.BASELINE);
        }

        /** Inputs dropped from the page cache behind the reader as {@code -Dmergeforge.drop-behind} says ({@link DropBehind}). */
        public Options(Backend backend, long seed, long maxShardBytes, boolean overwrite, boolean allowNonFinite, AimRelaxer aim, Events events,
                       long fusedChunk, long streamChunk, long pageCacheRoom) {
            this(backend, seed, maxShardBytes, overwrite, allowNonFinite, aim, events, fusedChunk, streamChunk, pageCacheRoom, DropBehind.Settings.configured());
        }

        /** Without a page-cache estimate ({@code pageCacheRoom} unbounded: no note about passes going back to disk). */
        public Options(Backend backend, long seed, long maxShardBytes, boolean overwrite, boolean allowNonFinite, AimRelaxer aim, Events events,
                       long fusedChunk, long streamChunk) {
            this(backend, seed, maxShardBytes, overwrite, allowNonFinite, aim, events, fusedChunk, streamChunk, Long.MAX_VALUE);
        }

        public Options(Backend backend, long seed, long maxShardBytes, boolean overwrite, boolean allowNonFinite, AimRelaxer aim, Events events, long fusedChunk) {
            this(backend, seed, maxShardBytes, overwrite, allowNonFinite, aim, events, fusedChunk, STREAM_CHUNK);
        }

        public Options(Backend backend, long seed, long maxShardBytes, boolean overwrite, boolean allowNonFinite, AimRelaxer aim, Events events) {
            this(backend, seed, maxShardBytes, overwrite, allowNonFinite, aim, events, InputChunks.CHUNK);
        }
    }

    /** Elements per chunk of a chunked method when no budget says otherwise (4 MiB per float32 chunk). */
    public static final long STREAM_CHUNK = 1L << 20;

    /** Elements per chunk in which fused tensors read their inputs, by default. */
    public static final long FUSED_CHUNK = InputChunks.CHUNK;

    /** What a finished merge reports ({@code output} null for a merge into memory). */
    public record Result(Path output, int tensors, long bytesIn, long bytesOut, double seconds, long peakWorkingBytes) {}

    /** A merge into memory: its report and the merged model, which closing this frees. */
    public record InMemory(Result result, MemoryModel model) implements AutoCloseable {
        @Override public void close() { model.close(); }
    }

    private Merger() {}

    /** The shards the plan writes, with the writer's entries in plan order. */
    public static ShardPlan shards(Planner.Plan plan, long maxShardBytes) {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (PlannedTensor t : plan.tensors()) entries.add(new SafetensorsWriter.Entry(t.name(), t.outDtype(), t.shape()));
        return ShardPlan.of(entries, maxShardBytes);
    }

    /**
     * Bytes of working memory the merge needs at most: inputs, base, output and two scratch tiles of
     * the largest tensor; for data-informed methods also the per-model statistic tiles and, for
     * RegMean, the float64 solve (summed Gram, right-hand sides, one model's G~ and Wᵀ).
     */
    public static long workingBytesEstimate(Planner.Plan plan) {
        long max = (plan.maxInputs() + 3L) * plan.largestElements() * 4L;
        for (PlannedTensor t : plan.tensors()) {
            if (t.stats().isEmpty()) continue;
            long b = (t.inputs().size() + 3L) * t.shape().numel() * 4L;
            for (TensorView s : t.stats()) b += s.numel() * 4L;
            if (plan.config().method().stats() == MethodSpec.Stats.GRAM) {
                long in = t.shape().dim(1), out = t.shape().dim(0);
                b += 8L * (2 * in * in + 2 * in * out);
            }
            max = Math.max(max, b);
        }
        return max;
    }

    public static Result run(Planner.Plan plan, Planner.Inputs inputs, Path outputDir, Options o) {
        long t0 = System.nanoTime();
        ShardPlan shards = shards(plan, o.maxShardBytes());
        List<Path> inputDirs = inputs.all().stream().map(c -> c.dir()).toList();
        o.events().start(plan.config().method().name(), plan.tensors().size(), plan.inBytes(), plan.outBytes(), o.backend().name());
        MemoryLedger ledger = new MemoryLedger(o.bufferAllowance(), o.events()::note);
        try (OutputDir out = OutputDir.create(outputDir, o.overwrite(), inputDirs, shards.totalFileBytes());
             ShardWriters sink = new ShardWriters(out.temp(), shards, ledger)) {
            long peak = stream(plan, inputs, sink, o, t0, ledger);
            shards.writeIndex(out.temp());
            OutputFiles.write(out.temp(), plan, inputs, o.seed(), dominantDtype(plan));
            out.commit();
            return done(plan, out.target(), t0, peak, o);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the merged model beside " + outputDir + ": " + e.getMessage()
                    + "; check free disk space and permissions", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CheckpointException("merge interrupted; nothing was written to " + outputDir);
        }
    }

    /**
     * The merge into memory instead of a folder: the same tensors, byte for byte, as {@link #run}
     * would write, held by the returned {@link MemoryModel} (the caller closes the result), with the
     * config.json the folder would get. Only for plans whose tokenizer is copied as is (no
     * tokenizer source building a new vocabulary): {@link #inMemoryTokenizer} says which.
     */
    public static InMemory runInMemory(Planner.Plan plan, Planner.Inputs inputs, Options o) {
        Path tokenizer = inMemoryTokenizer(plan, inputs);
        if (tokenizer == null) throw new IllegalArgumentException("the plan builds a tokenizer; merge it to a folder");
        long t0 = System.nanoTime();
        o.events().start(plan.config().method().name(), plan.tensors().size(), plan.inBytes(), plan.outBytes(), o.backend().name());
        MemoryModel m = new MemoryModel(plan.tensors(), OutputFiles.outputConfig(plan, dominantDtype(plan)), tokenizer);
        try {
            // the merged model itself is the caller's, not the merge's working memory: only the buffers are counted
            return new InMemory(done(plan, null, t0, stream(plan, inputs, m, o, t0, new MemoryLedger(o.bufferAllowance(), o.events()::note)), o), m);
        } catch (InterruptedException e) {
            m.close();
            Thread.currentThread().interrupt();
            throw new CheckpointException("merge interrupted; the candidate in memory was dropped");
        } catch (RuntimeException | Error e) {
            m.close();
            throw e;
        }
    }

    /**
     * The merge of {@code tensors} (tensors of {@code plan}, in the caller's order; one may come
     * twice) into {@code sink}: each the same bytes {@link #run} writes, by the same path. For the
     * layer-by-layer eval of a candidate ({@link LayerFeed}), whose sink runs the forward pass as
     * each stage completes.
     */
    static Result runInto(Planner.Plan plan, List<PlannedTensor> tensors, Planner.Inputs inputs, TensorSink sink, Options o) {
        Planner.Plan staged = new Planner.Plan(plan.config(), tensors, plan.reference(), plan.outLayers());
        long t0 = System.nanoTime();
        o.events().start(plan.config().method().name(), tensors.size(), staged.inBytes(), staged.outBytes(), o.backend().name());
        try {
            return done(staged, null, t0, stream(staged, inputs, sink, o, t0, new MemoryLedger(o.bufferAllowance(), o.events()::note)), o);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CheckpointException("merge interrupted; the candidate's layers in memory were dropped");
        }
    }

    /**
     * The folder whose tokenizer files a merged model held in memory uses, or null when the output
     * folder would get tokenizer files built by the merge (a tokenizer source's new vocabulary).
     */
    public static Path inMemoryTokenizer(Planner.Plan plan, Planner.Inputs inputs) {
        if (inputs.tokenizer(plan.config()) != null) return null;
        return OutputFiles.tokenizerSource(plan.config(), plan, inputs).dir();
    }

    /** Reports the finished merge ({@code output} null: in memory). */
    private static Result done(Planner.Plan plan, Path output, long t0, long peak, Options o) {
        double secs = (System.nanoTime() - t0) / 1e9;
        Result r = new Result(output, plan.tensors().size(), plan.inBytes(), plan.outBytes(), secs, peak);
        o.events().done(output == null ? "(in memory)" : output.toString(), r.tensors(), r.bytesIn(), r.bytesOut(), secs, peak,
                ProcessStats.peakRssBytes());
        return r;
    }

    /**
     * Merges every tensor of the plan into {@code sink}, in plan order, and finishes it; returns the
     * peak working bytes (float32 tiles and staged input copies, never both at their peak together,
     * so an upper bound).
     */
    private static long stream(Planner.Plan plan, Planner.Inputs inputs, TensorSink sink, Options o, long t0, MemoryLedger ledger)
            throws InterruptedException {
        Events ev = o.events();
        ExecutorService reader = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "mergeforge-readahead");
            t.setDaemon(true);
            return t;
        });
        // a second reading thread: the chunks of a fused tensor's inputs, one ahead of the combine
        ExecutorService reader2 = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "mergeforge-readahead-2");
            t.setDaemon(true);
            return t;
        });
        try (TilePool pool = new TilePool(Long.MAX_VALUE, o.backend()::released, false, ledger);
             TilePool stagingPool = new TilePool(Long.MAX_VALUE, t -> { }, true, ledger);
             InputChunks chunks = new InputChunks(inputs, reader2, o.fusedChunk(), ledger)) {
            MergeContext ctx = new MergeContext(o.backend(), pool, o.seed(), ev::note);
            RereadNote rereads = new RereadNote(o.pageCacheRoom());
            // computed inputs (permuted embeddings, LoRA-applied weights): chunk by chunk, charged to the ledger
            DerivedReads derived = new DerivedReads(inputs.derived(), ledger, o.streamChunk());
            DropBehind drops = new DropBehind(plan, inputs, o.drop(), o.pageCacheRoom());
            // float64 arrays chunked programs hand on from tensor to tensor (RegMean's solves): the merge's, dropped with it
            HostArrays arrays = new HostArrays();
            if (drops.active() && o.drop().mode() == dev.mergeforge.io.DropMode.AUTO) {
                ev.note(String.format(java.util.Locale.ROOT, "the inputs (%.2f GB) exceed the page cache the memory budget leaves (%.2f GB):"
                        + " their pages are dropped from it behind the reader (docs/io.md, \"Inputs larger than memory\")",
                        DropBehind.distinctInputBytes(plan) / 1e9, Math.max(0, o.pageCacheRoom()) / 1e9));
            }
            List<PlannedTensor> tensors = plan.tensors();
            MethodSpec spec = plan.config().method();
            Future<Ahead> ahead = tensors.isEmpty() ? null : reader.submit(readAhead(spec, 0, tensors.getFirst(), inputs, stagingPool, o, drops, derived));
            try {
                for (int i = 0; i < tensors.size(); i++) {
                    Ahead a = ahead.get(); // tensor i's pages are in, or its first chunk staged
                    ahead = i + 1 < tensors.size() ? reader.submit(readAhead(spec, i + 1, tensors.get(i + 1), inputs, stagingPool, o, drops, derived)) : null;
                    PlannedTensor t = tensors.get(i);
                    try {
                        mergeOne(ctx, spec, i, a, chunks, sink, o, rereads, drops, derived, arrays);
                    } finally {
                        stagingPool.releaseAll(a.staging());
                        derived.release(views(t));
                    }
                    dropPages(t);
                    drops.finished(i);
                    sink.written(t.name());
                    ev.tensor(i, tensors.size(), t.name(), t.inBytes(), t.outBytes(), (System.nanoTime() - t0) / 1e9);
                }
            } finally {
                settle(ahead, stagingPool);
            }
            sink.finish();
            return pool.peakBorrowedBytes() + stagingPool.peakBorrowedBytes();
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
        } finally {
            reader.shutdownNow();
            reader2.shutdownNow();
        }
    }

    /** Merges one tensor into its output slot. */
    private static void mergeOne(MergeContext ctx, MethodSpec spec, int index, Ahead a, InputChunks chunks, TensorSink writer, Options o,
                                 RereadNote rereads, DropBehind drops, DerivedReads derived, HostArrays arrays)
            throws InterruptedException, java.util.concurrent.ExecutionException {
        PlannedTensor t = a.tensor();
        if (t.copyOnly()) {
            TensorView src = t.base() != null ? t.base() : t.inputs().getFirst();
            // a computed input is computed block by block into the writer (whole only where the sink takes whole tensors)
            if (derived.isDerived(src) && derived.copy(src, t.name(), writer)) return;
            derived.prepare(List.of(src));
            writer.write(t.name(), src.data());
            return;
        }
        if (a.fused() != null) {
            mergeFused(ctx, a.fused(), t, a.head(), chunks, writer, o, (v, from, n) -> drops.consumed(index, v, from, n), derived);
            return;
        }
        MergeMethod method = spec.factory().create(t.global());
        if (a.chunked()) {
            ChunkProgram program = ((ChunkedMethod) method).program(new TensorSetup(t.name(), t.shape(), t.params(), t.baseIndex(),
                    t.base() != null, o.seed(), ctx.log(), t.stats(), arrays));
            if (program != null) {
                // AIM: the relaxation as the last step of the combine pass, chunk by chunk
                Combination.Relax relax = o.aim() == null || t.base() == null ? null : o.aim().relaxation(t.name(), t.shape());
                if (relax != null) program = program.relaxed(relax);
                mergeChunked(ctx, program, t, writer, o, rereads, chunkReads(index, t, drops), derived);
                return;
            }
        }
        Backend be = ctx.backend();
        TilePool pool = ctx.pool();
        List<Tile> held = new ArrayList<>();
        try {
            Tile base = null;
            if (t.base() != null) {
                base = pool.borrow(t.shape());
                held.add(base);
                load(be, t.base(), base, o, derived);
            }
            List<Tile> models = new ArrayList<>();
            for (TensorView v : t.inputs()) {
                Tile m = pool.borrow(t.shape());
                held.add(m);
                load(be, v, m, o, derived);
                models.add(m);
            }
            List<Tile> stats = new ArrayList<>();
            for (TensorView v : t.stats()) {
                // per-model statistics (Fisher: the tensor's shape; Gram: [in, in]), only for tensors that have them
                Tile s = pool.borrow(v.shape());
                held.add(s);
                load(be, v, s, o, derived);
                stats.add(s);
            }
            Tile out = pool.borrow(t.shape());
            held.add(out);
            // theta = method(theta_0, theta_1..N)
            method.merge(ctx, new MergeInputs(t.name(), base, models, t.params(), t.baseIndex(), t.layer(), stats), out);
            // AIM: theta = theta_0 + (theta - theta_0) * (1 - (1 - omega) * I)
            if (o.aim() != null && base != null) o.aim().apply(be, t.name(), t.shape(), base, out);
            // the result in the output dtype, staged in the (now free) first model tile, then written
            if (models.isEmpty()) throw new IllegalStateException("no model tile to stage " + t.name() + " in");
            be.released(models.getFirst());
            MemorySegment bytes = models.getFirst().data().asSlice(0, t.outBytes());
            be.store(out, t.outDtype(), bytes);
            writer.write(t.name(), bytes);
        } finally {
            pool.releaseAll(held);
        }
    }

    /** Loads an input into its tile; the NaN/Inf check rides along (unless --allow-nonfinite) and is confirmed on the stored bits. */
    private static void load(Backend be, TensorView v, Tile tile, Options o, DerivedReads derived) {
        if (o.allowNonFinite()) be.load(v, tile);
        else if (be.loadChecked(v, tile)) requireFinite(be, v, derived);
    }

    /**
     * Whether {@code t} runs as passes over chunks: its method is a {@link ChunkedMethod} (its
     * statistics, if any, go to the program: Fisher's streamed beside the models, RegMean's Grams
     * read by its CPU solve, unless the backend offers a device solver: CUDA solves them whole) and
     * the backend has chunk ops (AIM, where it relaxes the tensor, is the last step of the combine
     * pass). Decided by the read-ahead, which then leaves the pages to the passes.
     */
    static boolean chunked(MethodSpec spec, PlannedTensor t, Options o) {
        if (t.copyOnly() || t.shape().numel() == 0 || o.backend().chunkOps().isEmpty()) return false;
        if (!(spec.factory().create(t.global()) instanceof ChunkedMethod)) return false;
        // RegMean's Linear weights solve on the backend's device solver (CUDA) whole; the row chunks solve on the CPU
        return !(spec.stats() == MethodSpec.Stats.GRAM && !t.stats().isEmpty() && o.backend().denseSolver().isPresent());
    }

    /**
     * Merges one tensor as its method's passes over chunks ({@link ChunkRunner}): the reduction passes,
     * then the combine pass straight into the writer, one output chunk at a time through a staging
     * chunk in the output dtype. NaN/Inf seen in a loaded chunk is confirmed on the stored bits.
     */
    private static void mergeChunked(MergeContext ctx, ChunkProgram program, PlannedTensor t, TensorSink writer, Options o,
                                     RereadNote rereads, ChunkRunner.Reads reads, DerivedReads derived) {
        ChunkOps ops = o.backend().chunkOps().orElseThrow();
        long es = t.outDtype().byteSize();
        try (ChunkRunner r = new ChunkRunner(ops, program, t.base(), t.inputs(), t.stats(), t.shape(), o.streamChunk(), ctx.pool(), reads,
                derived)) {
            r.reduce();
            rereads.afterReductions(t, r.reductionPasses(), ctx.log());
            if (r.sawNonFinite()) requireFinite(t, o, derived);
            long cb = r.chunkElements() * es;
            Tile staging = ctx.pool().borrow(Shape.of((Math.min(r.chunkElements(), t.shape().numel()) * es + 3) / 4), true);
            try {
                long[] current = {-1};
                // θ chunk by chunk: computed when the writer first asks for its bytes, then copied piece by piece
                boolean filled = writer.fill(t.name(), 1, cb, (offset, dst) -> {
                    long k = offset / cb;
                    if (k != current[0]) {
                        Tile out = r.combine(k);
                        ops.store(out, t.outDtype(), staging.data().asSlice(0, out.size() * es));
                        current[0] = k;
                    }
                    MemorySegment.copy(staging.data(), offset - k * cb, dst, 0, dst.byteSize());
                    return true;
                });
                if (!filled) throw new IllegalStateException("the writer refused byte pieces of " + t.name());
            } finally {
                ctx.pool().release(staging);
            }
            if (r.sawNonFinite()) requireFinite(t, o, derived);
        }
    }

    /**
     * What a chunked tensor's passes tell {@link DropBehind}: a chunk read by the last pass is
     * consumed; one read by an earlier pass is consumed too when it lies past the tensor's keep
     * window (the share of its inputs the page cache holds between passes).
     */
    private static ChunkRunner.Reads chunkReads(int index, PlannedTensor t, DropBehind drops) {
        if (!drops.active()) return ChunkRunner.Reads.NONE;
        long keep = drops.keepElements(t);
        return (v, from, n, last) -> {
            if (last || from + n > keep) drops.consumed(index, v, from * v.dtype().byteSize(), n * v.dtype().byteSize());
        };
    }

    /**
     * The log's one note (per merge) that a multi-pass tensor's later passes go back to disk: its
     * stored inputs exceed the page cache the memory budget leaves (docs/io.md, "Memory budget"),
     * so each pass after the first finds the first chunks evicted by the last ones.
     */
    private static final class RereadNote {
        private final long room;
        private boolean said;

        RereadNote(long room) { this.room = room; }

        void afterReductions(PlannedTensor t, int passes, java.util.function.Consumer<String> log) {
            if (said || passes == 0) return;
            java.util.Set<TensorView> distinct = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            if (t.base() != null) distinct.add(t.base());
            distinct.addAll(t.inputs());
            long bytes = 0;
            for (TensorView v : distinct) bytes += v.data().byteSize();
            if (bytes <= room) return;
            said = true;
            log.accept(String.format(java.util.Locale.ROOT, "tensor %s: its inputs (%.2f GB) exceed the page cache the memory budget leaves"
                    + " (%.2f GB), so its %d later pass%s read them from disk again (and so may other tensors of this merge); a smaller"
                    + " --max-memory leaves more", t.name(), bytes / 1e9, Math.max(0, room) / 1e9, passes, passes == 1 ? "" : "es"));
        }
    }

    private static void requireFinite(PlannedTensor t, Options o, DerivedReads derived) {
        if (o.allowNonFinite()) return;
        if (t.base() != null) requireFinite(o.backend(), t.base(), derived);
        for (TensorView v : t.inputs()) requireFinite(o.backend(), v, derived);
        for (TensorView v : t.stats()) requireFinite(o.backend(), v, derived);
    }

    /** A tensor the backend merges fused: the method's {@link Combination} over the inputs it reads. */
    private record Fused(Combination combination, List<TensorView> models) {}

    /**
     * The fused path for {@code t}, or null when it takes the tile path: the method is one
     * {@link Combination} ({@link CombinationMethod}), with AIM's relaxation as its last step when
     * AIM relaxes the tensor, the tensor has no statistics, and the backend fuses that combination
     * of those dtypes. Decided once, by the read-ahead (which then stages the inputs' first chunk).
     */
    private static Fused fused(MethodSpec spec, PlannedTensor t, Options o) {
        if (t.copyOnly() || !t.stats().isEmpty() || t.shape().numel() == 0) return null;
        if (!(spec.factory().create(t.global()) instanceof CombinationMethod cm)) return null;
        CombinationMethod.Program p = cm.program(t.name(), t.params(), t.baseIndex(), t.base() != null);
        if (p == null) return null;
        Combination c = p.combination();
        // AIM: theta = theta_0 + (theta - theta_0) * (1 - (1 - omega) * I), as the last step of the pass
        if (o.aim() != null && t.base() != null) {
            Combination.Relax r = o.aim().relaxation(t.name(), t.shape());
            if (r != null) c = c.withRelax(r);
        }
        List<TensorView> xs = new ArrayList<>();
        for (int j : p.models()) xs.add(t.inputs().get(j));
        return o.backend().fusesCombination(c, xs, t.base(), t.outDtype()) ? new Fused(c, xs) : null;
    }

    /**
     * Merges one tensor in one pass from its inputs to the output bytes, computed straight into the
     * writer's blocks: the inputs come in chunks (chunk 0 staged by the read-ahead, the next one
     * read while the current one is combined, see {@link InputChunks}), or, where the read-ahead
     * could not stage them, from the mappings; a tensor that starts off an element boundary of the
     * block goes through a staging buffer. No float32 tiles. The pass also reports NaN/Inf among
     * its inputs, which the read-ahead left unchecked; then the stored bits are checked as on the
     * tile path.
     */
    private static void mergeFused(MergeContext ctx, Fused f, PlannedTensor t, Map<TensorView, TensorView> head, InputChunks chunks,
                                   TensorSink writer, Options o, InputChunks.Consumed consumed, DerivedReads derived)
            throws InterruptedException, java.util.concurrent.ExecutionException {
        Backend be = ctx.backend();
        long size = t.outDtype().byteSize();
        boolean[] sawNonFinite = {false};
        TensorView base = f.combination().readsBase() ? t.base() : null;
        boolean filled;
        if (head != null) {
            // theta = combination(theta_0, theta_1..N), chunk by chunk, in the output dtype
            List<TensorView> distinct = distinct(f, base);
            int[] modelAt = f.models().stream().mapToInt(v -> indexOf(distinct, v)).toArray();
            int baseAt = base == null ? -1 : indexOf(distinct, base);
            chunks.begin(distinct, head, t.shape().numel(), consumed);
            long ce = chunks.chunkElements();
            filled = writer.fill(t.name(), size, ce * size, (offset, dst) -> {
                long el = offset / size, count = dst.byteSize() / size, k = el / ce, at = el - k * ce;
                List<TensorView> c;
                try {
                    c = chunks.chunk(k);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new CheckpointException("merge interrupted; nothing was written");
                } catch (java.util.concurrent.ExecutionException e) {
                    throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
                }
                List<TensorView> xs = new ArrayList<>(modelAt.length);
                for (int m : modelAt) xs.add(slice(c.get(m), at, count));
                sawNonFinite[0] |= be.combineStored(f.combination(), xs, baseAt < 0 ? null : slice(c.get(baseAt), at, count),
                        el, t.outDtype(), dst);
                return true;
            });
        } else {
            // theta = combination(theta_0, theta_1..N) from the mappings; computed inputs a window of at most fusedChunk elements at a time,
            // the stored ones beside them then dropped from this process behind each window (they stay in the page cache)
            List<TensorView> computed = distinct(f, base).stream().filter(derived::isDerived).toList();
            List<TensorView> stored = computed.isEmpty() ? List.of() : distinct(f, base).stream().filter(v -> !derived.isDerived(v)).toList();
            long step = computed.isEmpty() ? Long.MAX_VALUE : o.fusedChunk();
            filled = writer.fill(t.name(), size, (offset, dst) -> {
                long first = offset / size, total = dst.byteSize() / size;
                for (long from = first; from < first + total; from += step) {
                    long count = Math.min(step, first + total - from);
                    for (TensorView v : computed) derived.ready(v, from, count);
                    sawNonFinite[0] |= be.combineStored(f.combination(), slices(f.models(), from, count),
                            base == null ? null : slice(base, from, count), from, t.outDtype(), dst.asSlice((from - first) * size, count * size));
                    for (TensorView v : stored) if (v.data().isMapped()) Madvise.dontNeedTouched(slice(v, from, count).data());
                }
                return true;
            });
        }
        if (!filled) {
            Tile staging = ctx.pool().borrow(Shape.of((t.outBytes() + 3) / 4));
            try {
                MemorySegment bytes = staging.data().asSlice(0, t.outBytes());
                // a sink of whole tensors: the whole-tensor staging path, computed inputs whole too
                derived.prepare(distinct(f, base));
                sawNonFinite[0] |= be.combineStored(f.combination(), f.models(), base, 0, t.outDtype(), bytes);
                writer.write(t.name(), bytes);
            } finally {
                ctx.pool().release(staging);
            }
        }
        if (sawNonFinite[0] && !o.allowNonFinite()) {
            for (TensorView v : f.models()) requireFinite(be, v, derived);
            if (base != null) requireFinite(be, base, derived);
        }
    }

    /** The distinct views a fused pass reads (a base listed among the models once), in a fixed order. */
    private static List<TensorView> distinct(Fused f, TensorView base) {
        List<TensorView> out = new ArrayList<>();
        for (TensorView v : f.models()) if (indexOf(out, v) < 0) out.add(v);
        if (base != null && indexOf(out, base) < 0) out.add(base);
        return out;
    }

    private static int indexOf(List<TensorView> vs, TensorView v) {
        for (int i = 0; i < vs.size(); i++) if (vs.get(i) == v) return i;
        return -1;
    }

    /** Elements [from, from + count) of a tensor, as a flat view. */
    private static TensorView slice(TensorView v, long from, long count) { return InputChunks.slice(v, from, count); }

    private static List<TensorView> slices(List<TensorView> vs, long from, long count) {
        return vs.stream().map(v -> slice(v, from, count)).toList();
    }

    /**
     * A tensor made ready by the read-ahead: the tensor, the buffers to release after it merges, its
     * fused path (null: the tile path) and for a fused tensor its inputs' staged chunk 0 (identity
     * map from view to copy; null when its inputs are read from the mappings).
     */
    private record Ahead(PlannedTensor tensor, List<Tile> staging, Fused fused, Map<TensorView, TensorView> head, boolean chunked) {}

    /**
     * The read-ahead of one tensor. A tensor the backend merges fused has the first chunk of each
     * input copied in with positional reads (the merge reads the rest chunk by chunk, see
     * {@link InputChunks}); other tensors have their pages mapped in. Then the backend may start
     * copying them to its own memory while the current tensor merges. NaN/Inf are not looked for
     * here: each input is checked where it is read anyway (its load, or the fused pass), which
     * saves a whole pass over the inputs on two cores.
     */
    private static java.util.concurrent.Callable<Ahead> readAhead(MethodSpec spec, int index, PlannedTensor t, Planner.Inputs inputs,
                                                                  TilePool pool, Options o, DropBehind drops, DerivedReads derived) {
        Backend be = o.backend();
        return () -> {
            Fused fused = t.copyOnly() ? null : fused(spec, t, o);
            boolean chunked = fused == null && chunked(spec, t, o);
            // computed inputs (permuted embeddings, adapted weights) are computed whole for the tile path only: the others read them in chunks
            boolean tiles = !t.copyOnly() && fused == null && !chunked;
            if (tiles) derived.prepare(views(t));
            // a fused tensor with computed inputs reads every input a window at a time from its memory (mergeFused): nothing to stage or page in whole
            boolean windowed = fused != null && distinct(fused, t.base()).stream().anyMatch(derived::isDerived);
            List<Tile> staging = new ArrayList<>();
            Map<TensorView, TensorView> head = null;
            try {
                if (fused != null && !windowed) {
                    List<TensorView> distinct = distinct(fused, fused.combination().readsBase() ? t.base() : null);
                    List<MemorySegment> buffers = new ArrayList<>();
                    for (TensorView v : distinct) {
                        Tile buf = pool.borrow(Shape.of((InputChunks.headBytes(v, o.fusedChunk()) + 3) / 4));
                        staging.add(buf);
                        buffers.add(buf.data());
                    }
                    head = InputChunks.readHead(distinct, inputs, buffers, o.fusedChunk(), (v, from, n) -> drops.consumed(index, v, from, n));
                }
            } catch (RuntimeException e) {
                pool.releaseAll(staging);
                throw e;
            }
            List<TensorView> views = new ArrayList<>(t.inputs());
            if (t.base() != null) views.add(t.base());
            views.addAll(t.stats());
            // pages in what will be read through the mappings (NaN/Inf are checked where each input is read: its load or the fused pass)
            for (TensorView v : views) {
                boolean fusedReads = fused != null
                        && ((fused.combination().readsBase() && v == t.base()) || fused.models().stream().anyMatch(m -> m == v));
                // a chunked tensor maps its pages chunk by chunk in each pass instead
                if (!chunked && !windowed && (head == null || !fusedReads)) touch(v.data());
            }
            // a chunked tensor's inputs go to a device chunk by chunk in its passes, never whole
            // computed inputs of a fused tensor get their bytes chunk by chunk in its pass: not prefetched
            if (tiles) be.prefetch(views);
            else if (!t.copyOnly() && !chunked) be.prefetch(views.stream().filter(v -> !derived.isDerived(v)).toList());
            return new Ahead(t, staging, fused, head, chunked);
        };
    }

    /** After the loop, normally or not: waits for a read-ahead still in flight and returns its buffers, so the pool closes clean. */
    private static void settle(Future<Ahead> ahead, TilePool pool) {
        if (ahead == null) return;
        try {
            pool.releaseAll(ahead.get().staging());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.CancellationException e) {
            // its failure is not the one being reported
        }
    }

    /** Throws naming the tensor, file, value and element when a stored input holds NaN or ±Inf. */
    private static void requireFinite(Backend be, TensorView v, DerivedReads derived) {
        long bad = derived.firstNonFinite(be, v);
        if (bad >= 0) {
            throw new CheckpointException("tensor '" + v.name() + "' in " + v.source() + " has a non-finite value ("
                    + NonFinite.valueAt(v, bad) + ") at element " + bad + "; fix the model or pass --allow-nonfinite to merge anyway");
        }
    }

    private static void touch(MemorySegment s) {
        if (!s.isMapped() || Madvise.populate(s)) return;
        Madvise.willNeed(s);
        s.load();
    }

    /** The views a tensor reads: its inputs and base. */
    private static List<TensorView> views(PlannedTensor t) {
        List<TensorView> vs = new ArrayList<>(t.inputs());
        if (t.base() != null) vs.add(t.base());
        return vs;
    }

    private static void dropPages(PlannedTensor t) {
        if (t.base() != null) Madvise.dontNeed(t.base().data());
        for (TensorView v : t.inputs()) Madvise.dontNeed(v.data());
        for (TensorView v : t.stats()) Madvise.dontNeed(v.data());
    }

    /** The dtype most output bytes have: what config.json's torch_dtype says. */
    static DType dominantDtype(Planner.Plan plan) {
        Map<DType, Long> bytes = new HashMap<>();
        for (PlannedTensor t : plan.tensors()) bytes.merge(t.outDtype(), t.outBytes(), Long::sum);
        return bytes.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(DType.F32);
    }
}
