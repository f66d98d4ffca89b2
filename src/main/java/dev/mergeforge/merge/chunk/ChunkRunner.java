package dev.mergeforge.merge.chunk;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.io.Madvise;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a {@link ChunkProgram} over one tensor's stored inputs: the reduction passes chunk by chunk,
 * then the combine pass one output chunk at a time, as the caller asks for them (the merger hands
 * them to the writer). In memory: one float32 chunk per input (and per statistic the program streams), per scratch tile and for the output
 * ({@link #workingBytes}); each input's pages are mapped in for the chunk being read and dropped
 * from this process behind it (they stay in the page cache for the next pass). Chunk bookkeeping is
 * in {@code long}: tensors past 2^31 elements are cut like any other.
 */
public final class ChunkRunner implements AutoCloseable {
    private final ChunkOps ops;
    private final ChunkProgram program;
    private final TensorView base;
    private final List<TensorView> models, stats;
    private final long numel, chunk;
    private final TilePool pool;
    private final List<Tile> held = new ArrayList<>();
    private final Tile baseTile, outTile;
    private final List<Tile> modelTiles = new ArrayList<>(), scratchTiles = new ArrayList<>(), statTiles = new ArrayList<>();
    private final Reads reads;
    private final Sources sources;
    private boolean nonFinite;
    /**
     * Chunks [0, checked) have been loaded with the NaN/Inf check: a later pass reads the same stored
     * bytes again ({@link ChunkOps#reload}, no check). Chunks are mostly loaded in order; one loaded
     * out of order past this bound is simply checked again.
     */
    private long checked;
    private int reductionPasses;
    /** Whether the pass loading chunks now is the last that reads the inputs (the combine pass). */
    private boolean lastPass;
    /** The chunk loaded last (its tiles hold what the pass that loaded it left), and how many loads so far. */
    private Chunk loaded;
    private long loads;

    /**
     * Told of each input chunk a pass has loaded, after the load: the merger drops pages behind the
     * reader with it (docs/io.md, "Inputs larger than memory"). {@code lastPass}: no later pass of
     * this tensor reads these elements again.
     */
    @FunctionalInterface
    public interface Reads {
        void read(TensorView input, long fromElement, long elements, boolean lastPass);

        Reads NONE = (v, from, n, last) -> { };
    }

    /**
     * @param base          the base input, or null
     * @param models        the models in config order (aligned with the program's params)
     * @param chunkElements elements per chunk wanted (rounded down to the program's alignment, at least one multiple)
     */
    public ChunkRunner(ChunkOps ops, ChunkProgram program, TensorView base, List<TensorView> models, Shape shape, long chunkElements,
                       TilePool pool) {
        this(ops, program, base, models, shape, chunkElements, pool, Reads.NONE);
    }

    /**
     * Asked before an input chunk is loaded from its view's memory: a computed input
     * ({@code io.DerivedTensors}) makes those elements readable there. Not asked for a chunk the ops
     * hold already.
     */
    @FunctionalInterface
    public interface Sources {
        void ready(TensorView input, long fromElement, long elements);

        Sources STORED = (v, from, n) -> { };
    }

    /** As above, telling {@code reads} of every input chunk loaded. */
    public ChunkRunner(ChunkOps ops, ChunkProgram program, TensorView base, List<TensorView> models, Shape shape, long chunkElements,
                       TilePool pool, Reads reads) {
        this(ops, program, base, models, List.of(), shape, chunkElements, pool, reads, Sources.STORED);
    }

    /** As above, asking {@code sources} to make each input chunk readable first. */
    public ChunkRunner(ChunkOps ops, ChunkProgram program, TensorView base, List<TensorView> models, Shape shape, long chunkElements,
                       TilePool pool, Reads reads, Sources sources) {
        this(ops, program, base, models, List.of(), shape, chunkElements, pool, reads, sources);
    }

    /**
     * As above, with the models' per-element statistics ({@code stats}, aligned with the models, each
     * of the tensor's shape; empty for none), loaded in the same windows as the models when the
     * program streams them ({@link ChunkProgram#elementStats}).
     */
    public ChunkRunner(ChunkOps ops, ChunkProgram program, TensorView base, List<TensorView> models, List<TensorView> stats, Shape shape,
                       long chunkElements, TilePool pool, Reads reads) {
        this(ops, program, base, models, stats, shape, chunkElements, pool, reads, Sources.STORED);
    }

    /** The full form: statistics streamed with the models, and {@code sources} asked before each input chunk is loaded. */
    public ChunkRunner(ChunkOps ops, ChunkProgram program, TensorView base, List<TensorView> models, List<TensorView> stats, Shape shape,
                       long chunkElements, TilePool pool, Reads reads, Sources sources) {
        this.sources = sources;
        this.ops = ops;
        this.reads = reads;
        this.program = program;
        this.base = base;
        this.models = List.copyOf(models);
        this.stats = program.elementStats() ? List.copyOf(stats) : List.of();
        if (program.elementStats() && this.stats.size() != this.models.size()) {
            throw new IllegalArgumentException("the program streams one statistic per model: " + this.stats.size() + " for " + this.models.size() + " models");
        }
        for (TensorView v : this.stats) {
            if (v.numel() != shape.numel()) throw new IllegalArgumentException("statistic '" + v.name() + "' has " + v.numel() + " elements, the tensor " + shape.numel());
        }
        this.numel = shape.numel();
        this.pool = pool;
        // the backend's own memory (a device budget) may hold fewer elements per chunk than asked for
        int tiles = (base == null ? 0 : 1) + models.size() + this.stats.size() + program.scratch() + 1;
        String tensor = base != null ? base.name() : models.isEmpty() ? "(no inputs)" : models.getFirst().name();
        this.chunk = chunkFor(program.align(), ops.fitChunk(tensor, tiles, program.align(), chunkFor(program.align(), chunkElements)));
        Shape cs = Shape.of(Math.max(1, Math.min(chunk, numel)));
        try {
            baseTile = base == null ? null : borrow(cs);
            for (int j = 0; j < models.size(); j++) modelTiles.add(borrow(cs));
            for (int j = 0; j < this.stats.size(); j++) statTiles.add(borrow(cs));
            for (int k = 0; k < program.scratch(); k++) scratchTiles.add(borrow(cs));
            outTile = borrow(cs);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Elements per chunk: {@code wanted}, rounded down to a multiple of {@code align} (at least one). */
    public static long chunkFor(long align, long wanted) {
        if (wanted < 1 || align < 1) throw new IllegalArgumentException("chunk of " + wanted + " elements aligned to " + align);
        return Math.max(1, wanted / align) * align;
    }

    /** Number of chunks a tensor of {@code numel} elements is cut into ({@code long}: no 2^31 limit). */
    public static long chunks(long numel, long chunk) { return numel == 0 ? 0 : (numel - 1) / chunk + 1; }

    /** Elements of chunk {@code k}: all but the last are full. */
    public static long chunkSize(long numel, long chunk, long k) { return Math.min(chunk, numel - k * chunk); }

    /** Working bytes of a program over {@code inputs} stored inputs (statistics streamed with them included) with chunks of {@code chunk} elements. */
    public static long workingBytes(int inputs, int scratch, long chunk) { return (inputs + scratch + 1L) * chunk * 4L; }

    private Tile borrow(Shape s) {
        // any free buffer that holds it: a smaller tensor reuses a larger one's chunk buffers, touched already
        Tile t = pool.borrow(s, true);
        held.add(t);
        return t;
    }

    public long chunkElements() { return chunk; }

    public long chunks() { return chunks(numel, chunk); }

    /** Whether some loaded input value was NaN or ±Inf (confirm on the stored bits). */
    public boolean sawNonFinite() { return nonFinite; }

    /** Reduction passes run so far: the combine pass reads the inputs once more after each tensor's first. */
    public int reductionPasses() { return reductionPasses; }

    /** Runs every reduction pass the program needs, in order (a pass that asks to run again, until it is no longer needed). */
    public void reduce() {
        for (ChunkProgram.Pass p : program.reductions()) {
            while (p.needed()) {
                reductionPasses++;
                for (long k = 0, nk = chunks(); k < nk; k++) {
                    if (p.readsStored()) unloaded(p, k);
                    else p.chunk(ops, load(k));
                }
                p.end();
                if (!p.again()) break;
            }
        }
    }

    /** Chunks loaded so far (each load reads every input's elements of that chunk). */
    public long chunkLoads() { return loads; }

    /**
     * Computes output chunk {@code k}: the returned tile holds its values until the next call. A
     * tensor of one chunk that a reduction pass loaded last goes to a {@link ChunkProgram.Resumable}
     * combine as that pass left it, when the combine can start from there, without loading it again.
     */
    public Tile combine(long k) {
        lastPass = true;
        Tile out;
        if (chunks() == 1 && loaded != null && program.combine() instanceof ChunkProgram.Resumable r && r.canResume()) {
            Chunk c = loaded;
            loaded = null;
            told(c.offset(), c.size());
            out = view(outTile, c.size());
            r.resume(ops, c, out);
        } else {
            Chunk c = load(k);
            loaded = null;
            out = view(outTile, c.size());
            program.combine().chunk(ops, c, out);
        }
        return out;
    }

    /** Elements the output chunk {@code k} starts at. */
    public long offsetOf(long k) { return k * chunk; }

    private static Tile view(Tile t, long n) { return n == t.size() ? t : new Tile(t.data(), Shape.of(n)); }

    private Chunk load(long k) {
        long off = k * chunk, n = chunkSize(numel, chunk, k);
        // the first load of a chunk looks for NaN/Inf; the passes after it read the same bytes unchecked
        boolean check = k >= checked;
        Tile b = null;
        if (base != null) {
            b = view(baseTile, n);
            nonFinite |= loadFrom(base, off, b, check);
        }
        List<Tile> ms = new ArrayList<>(models.size());
        for (int j = 0; j < models.size(); j++) {
            Tile m = view(modelTiles.get(j), n);
            nonFinite |= loadFrom(models.get(j), off, m, check);
            ms.add(m);
        }
        List<Tile> fs = new ArrayList<>(stats.size());
        for (int j = 0; j < stats.size(); j++) {
            Tile f = view(statTiles.get(j), n);
            nonFinite |= loadFrom(stats.get(j), off, f, check);
            fs.add(f);
        }
        if (k == checked) checked++;
        List<Tile> ss = new ArrayList<>(scratchTiles.size());
        for (Tile s : scratchTiles) ss.add(view(s, n));
        // told once all inputs are loaded: a base also listed among the models is read twice above
        told(off, n);
        loads++;
        loaded = new Chunk(off, n, b, ms, ss, fs);
        return loaded;
    }

    /**
     * Runs {@code p} over chunk {@code k} without loading it ({@link ChunkProgram.Pass#readsStored}): every
     * distinct input readied ({@link #ready}) around the pass's ops and its pages dropped from this
     * process after, as {@link #loadFrom} does, and no NaN/Inf check (the first pass that loads the chunk makes it).
     */
    private void unloaded(ChunkProgram.Pass p, long k) {
        if (!stats.isEmpty()) throw new IllegalStateException("a pass reading stored inputs in a program that streams statistics");
        long off = k * chunk, n = chunkSize(numel, chunk, k);
        List<TensorView> inputs = new ArrayList<>();
        if (base != null) inputs.add(base);
        for (TensorView v : models) if (inputs.stream().noneMatch(w -> w == v)) inputs.add(v);
        List<MemorySegment> mapped = new ArrayList<>();
        try {
            for (TensorView v : inputs) {
                MemorySegment pages = ready(v, off, n);
                if (pages != null) mapped.add(pages);
            }
            List<Tile> ms = new ArrayList<>(models.size()), ss = new ArrayList<>(scratchTiles.size());
            for (Tile m : modelTiles) ms.add(view(m, n));
            for (Tile s : scratchTiles) ss.add(view(s, n));
            p.chunk(ops, new Chunk(off, n, base == null ? null : view(baseTile, n), ms, ss, List.of(), new Chunk.Stored(base, models)));
        } finally {
            for (MemorySegment bytes : mapped) Madvise.dontNeed(bytes);
        }
        told(off, n);
        loads++;
        // the tiles hold no inputs: a combine never resumes from them
        loaded = null;
    }

    /** Tells {@link #reads} of the elements [off, off + n) of every distinct input, as this pass reads them. */
    private void told(long off, long n) {
        if (base != null) reads.read(base, off, n, lastPass);
        for (int j = 0; j < models.size(); j++) {
            TensorView v = models.get(j);
            if (v != base && models.subList(0, j).stream().noneMatch(w -> w == v)) reads.read(v, off, n, lastPass);
        }
        for (int j = 0; j < stats.size(); j++) {
            TensorView v = stats.get(j);
            if (stats.subList(0, j).stream().noneMatch(w -> w == v)) reads.read(v, off, n, lastPass);
        }
    }

    /**
     * Loads elements [off, off + dst.size()) of v, mapping its pages in first and dropping them from
     * this process after — unless the ops hold that chunk already (a device kept it), when no page is
     * read. With {@code check}, returns whether a loaded value is NaN or ±Inf; without, false.
     */
    private boolean loadFrom(TensorView v, long off, Tile dst, boolean check) {
        MemorySegment pages = ready(v, off, dst.size());
        boolean bad = false;
        if (check) bad = ops.load(v, off, dst);
        else ops.reload(v, off, dst);
        if (pages != null) Madvise.dontNeed(pages);
        return bad;
    }

    /**
     * Readies elements [off, off + n) of v for the ops that read them — unless the ops hold that chunk
     * already: its source asked for them, then its pages mapped in. Returns those mapped bytes, which
     * the caller drops from this process after the ops, or null when nothing was mapped.
     */
    private MemorySegment ready(TensorView v, long off, long n) {
        if (ops.holds(v, off, n)) return null;
        sources.ready(v, off, n);
        long es = v.dtype().byteSize();
        MemorySegment bytes = v.data().asSlice(off * es, n * es);
        if (!bytes.isMapped()) return null;
        Madvise.populate(bytes);
        return bytes;
    }

    @Override
    public void close() {
        try {
            for (ChunkProgram.Pass p : program.reductions()) p.close();
        } finally {
            pool.releaseAll(held);
            held.clear();
        }
    }
}
