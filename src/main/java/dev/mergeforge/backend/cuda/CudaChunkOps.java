package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.BlockSum;
import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.FusionLoops;
import dev.mergeforge.backend.KarcherLoops;
import dev.mergeforge.backend.KeepBitLoops;
import dev.mergeforge.backend.LaneRanks;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.RankWindow;
import dev.mergeforge.backend.SphereLoops;
import dev.mergeforge.backend.SphereSteps;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.logging.Logger;

/**
 * The chunk ops on the GPU, within a device-memory budget ({@code --device-memory}, docs/cuda.md
 * "Chunked methods"). Chunk tiles are device-resident: the host tiles a chunk runner borrows are
 * keys to device buffers ({@link Residency}, a pool of this budget's own) and hold values only
 * inside {@link #onHost}. {@code load} copies a chunk's stored bytes up (bf16: half of float32) and
 * widens them on the device; the stored bytes stay there for the tensor's later passes while they
 * fit beside the working tiles ({@link StoredChunks}), else the next pass copies them up again.
 * {@code store} narrows on the device and copies back only the stored bytes.
 *
 * <p>Every op gives {@link JavaChunkOps}' bits (kernels/chunk.cu, plus the elementwise, TIES and
 * rank-window kernels as they are): reductions run per tensor-index block with the carried open
 * block, histograms are integer counts, Philox draws are keyed by tensor index. Float64 inputs and
 * outputs and {@code laneRanks} run the reference on the host. Serialised on the backend's lock.
 */
final class CudaChunkOps implements ChunkOps, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(CudaChunkOps.class.getName());
    private static final int THREADS = DeviceOps.THREADS;
    /** Device bytes beside the chunk tiles for small temporaries (histograms, partial sums, pointer arrays). */
    static final long RESERVE = 1L << 20;
    /** Float32 chunk-sized buffers beside the program's tiles: an input's stored bytes, a narrowed output, lane factors. */
    static final int EXTRA_TILES = 3;

    private final Object lock;
    private final Device dev;
    private final long budget;
    private final DeviceBufferPool pool;
    private final DeviceOps ops;
    private final Residency tiles;
    private final StoredChunks stored;
    private final JavaChunkOps host;
    private final Parallel par;
    /** Memory of the tiles loads wrote: when one goes back to the pool its tensor is done. */
    private final Set<Long> loadTargets = new HashSet<>();
    private boolean logged, closed;

    /**
     * @param lock        the backend's lock (ops on one device are serialised)
     * @param budgetBytes device bytes these ops may hold (Long.MAX_VALUE: no budget of their own)
     * @param par         threads for the ops that run on the host
     */
    CudaChunkOps(Object lock, Device dev, long budgetBytes, Parallel par) {
        this.lock = lock;
        this.dev = dev;
        this.budget = budgetBytes;
        this.pool = new DeviceBufferPool(dev, budgetBytes);
        this.ops = new DeviceOps(dev, pool);
        this.tiles = new Residency(dev, pool);
        this.stored = new StoredChunks(pool);
        // until a runner says how many tiles it works in, only an unbounded device keeps chunks
        stored.room(budgetBytes == Long.MAX_VALUE ? Long.MAX_VALUE : 0);
        this.par = par;
        this.host = new JavaChunkOps(par);
    }

    @Override public String name() { return "cuda"; }

    /** Device bytes a program of {@code tiles} chunk tiles of {@code chunk} elements works in. */
    static long workingBytes(int tiles, long chunk) {
        return Math.addExact(RESERVE, Math.multiplyExact((long) tiles + EXTRA_TILES, Math.multiplyExact(chunk, 4L)));
    }

    @Override
    public long fitChunk(String tensor, int tileCount, long align, long wanted) {
        synchronized (lock) {
            long most = budget == Long.MAX_VALUE ? wanted : (budget - RESERVE) / (4L * (tileCount + EXTRA_TILES));
            long chunk = Math.min(wanted, most) / align * align;
            if (chunk < 1) {
                long smallest = workingBytes(tileCount, align);
                throw new ConfigException(String.format(Locale.ROOT, "--device-memory %s is too small for tensor %s: a chunk of %d elements"
                        + " (its smallest cut) over %d device tiles needs %s; raise --device-memory to %dMiB or more",
                        mib(budget), tensor, align, tileCount, mib(smallest), (smallest + (1L << 20) - 1) >> 20));
            }
            // a new tensor: chunks kept for an earlier one (a runner whose tiles never went back to a pool that tells us) go
            stored.clear();
            stored.room(budget == Long.MAX_VALUE ? Long.MAX_VALUE : budget - workingBytes(tileCount, chunk));
            if (!logged) {
                logged = true;
                LOG.info(budget == Long.MAX_VALUE ? "cuda chunk ops: no device budget of their own"
                        : "cuda chunk ops: device budget " + mib(budget) + " (--device-memory)");
            }
            return chunk;
        }
    }

    private static String mib(long bytes) { return String.format(Locale.ROOT, "%.1fMiB", bytes / 1048576.0); }

    @Override
    public void onHost(List<Tile> reads, List<Tile> writes, Runnable body) {
        synchronized (lock) {
            try (OpBuffers op = op()) {
                for (Tile t : reads) tiles.toHost(t, true);
                for (Tile t : writes) tiles.toHost(t, false);
            }
            body.run();
        }
    }

    private OpBuffers op() {
        if (closed) throw new IllegalStateException("the cuda backend is closed");
        return new OpBuffers(dev, pool, tiles);
    }

    private void launch(Kernel k, long work, Object... args) { dev.launch(k, DeviceOps.grid(work, THREADS), THREADS, args); }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    // ---------------------------------------------------------------- conversion

    @Override
    public boolean holds(TensorView src, long from, long n) {
        synchronized (lock) {
            return stored.has(src, from, n);
        }
    }

    /**
     * {@link #load}, its flag unused: the chunks a device keeps between passes ({@link StoredChunks})
     * carry the flag their first load found, which a load skipping the check could not honestly record,
     * and a reload of a kept chunk downloads no flag anyway.
     */
    @Override
    public void reload(TensorView src, long from, Tile dst) { load(src, from, dst); }

    @Override
    public boolean load(TensorView src, long from, Tile dst) {
        long n = dst.size();
        if (from < 0 || from + n > src.numel()) throw new IllegalArgumentException("load " + src.name() + " [" + from + ", " + (from + n) + ") of " + src.numel());
        int kind = switch (src.dtype()) {
            case F32 -> 0;
            case BF16 -> 1;
            case F16 -> 2;
            case F64, I64, I32, I16, I8, U8, BOOL -> -1;
        };
        synchronized (lock) {
            if (Residency.kept(dst)) loadTargets.add(dst.data().address());
            if (kind < 0 || n == 0) {
                // float64 is narrowed on the host (and other dtypes refused with the reference's message)
                onHost(List.of(), List.of(dst), () -> { });
                return host.load(src, from, dst);
            }
            try (OpBuffers op = op()) {
                StoredChunks.Kept k = stored.get(src, from, n);
                if (k != null) {
                    launch(Kernel.CHUNK_LOAD, n, k.buf(), kind, op.write(dst), n, op.temp(4, "load flag"));
                    return k.nonFinite();
                }
                long es = src.dtype().byteSize();
                MemorySegment bytes = src.data().asSlice(from * es, n * es);
                tiles.settle(bytes);
                DeviceBuffer up = stored.reserve(src, from, bytes.byteSize());
                boolean keep = up != null;
                if (!keep) up = op.temp(bytes.byteSize(), "chunk of " + src.name());
                dev.upload(bytes, up);
                DeviceBuffer flag = op.temp(4, "load flag");
                dev.zero(flag, 4);
                launch(Kernel.CHUNK_LOAD, n, up, kind, op.write(dst), n, flag);
                int[] bad = new int[1];
                dev.download(flag, MemorySegment.ofArray(bad));
                if (keep) stored.keep(src, from, n, up, bad[0] != 0);
                return bad[0] != 0;
            }
        }
    }

    @Override
    public void store(Tile src, DType dtype, MemorySegment dst) {
        long n = src.size();
        synchronized (lock) {
            if (!DeviceOps.storesOnDevice(dtype, n, dst)) {
                onHost(List.of(src), List.of(), () -> host.store(src, dtype, dst));
                return;
            }
            try (OpBuffers op = op()) {
                tiles.settle(dst);   // host memory of a tile is about to be overwritten
                ops.storeTo(op, op.read(src), dtype, dst, n);
            }
        }
    }

    // ---------------------------------------------------------------- elementwise

    /** One elementwise launch over n elements ({@link OpBuffers#elementwise}). */
    private void elementwise(Kernel k, long n, List<Tile> reads, Tile out, Object... scalars) {
        if (n == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                op.elementwise(k, n, reads, out, scalars);
            }
        }
    }

    @Override public void sub(Tile a, Tile b, Tile out) { sameSize(a, b); sameSize(a, out); elementwise(Kernel.SUB, a.size(), List.of(a, b), out); }

    @Override public void add(Tile a, Tile b, Tile out) { sameSize(a, b); sameSize(a, out); elementwise(Kernel.ADD, a.size(), List.of(a, b), out); }

    @Override public void scale(Tile x, float s, Tile out) { sameSize(x, out); elementwise(Kernel.SCALE, x.size(), List.of(x), out, s); }

    @Override public void divide(Tile x, float d, Tile out) { sameSize(x, out); elementwise(Kernel.DIV_SCALAR, x.size(), List.of(x), out, d); }

    @Override public void mul(Tile a, Tile b, Tile out) { sameSize(a, b); sameSize(a, out); elementwise(Kernel.CHUNK_MUL, a.size(), List.of(a, b), out); }

    @Override public void div(Tile a, Tile b, Tile out) { sameSize(a, b); sameSize(a, out); elementwise(Kernel.CHUNK_DIV, a.size(), List.of(a, b), out); }

    @Override public void abs(Tile x, Tile out) { sameSize(x, out); elementwise(Kernel.CHUNK_ABS, x.size(), List.of(x), out); }

    @Override
    public void clamp(Tile x, float lo, float hi, Tile out) {
        if (!(lo <= hi)) throw new IllegalArgumentException("clamp bounds " + lo + " > " + hi);
        sameSize(x, out);
        elementwise(Kernel.CHUNK_CLAMP, x.size(), List.of(x), out, lo, hi);
    }

    @Override
    public void fill(Tile x, float v) {
        if (x.size() == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                launch(Kernel.CHUNK_FILL, x.size(), op.write(x), v, x.size());
            }
        }
    }

    @Override public void affine(Tile x, float a, float b, Tile out) { sameSize(x, out); elementwise(Kernel.CHUNK_AFFINE, x.size(), List.of(x), out, a, b); }

    /** kernels/aim.cu's mf_relax over the chunk's rows, with the importance of the channels the chunk lies on uploaded per call. */
    @Override
    public void relax(Tile base, Tile merged, Combination.Relax r, long offset, Tile out) {
        sameSize(base, merged); sameSize(base, out);
        long n = base.size();
        Combination.Relax.Window w = r.window(offset, n);
        if (n == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer db = op.read(base), dm = op.read(merged), di = op.temp(4 * w.channels(), "relax importance");
                dev.upload(MemorySegment.ofArray(r.importance()).asSlice(4 * w.firstChannel(), 4 * w.channels()), di);
                ops.relax(db, dm, di, r.omega(), r.axis(), w.cols(), op.write(out), n);
            }
        }
    }

    @Override public void keepWhereNonZero(Tile x, Tile ref, Tile out) { sameSize(x, ref); sameSize(x, out); elementwise(Kernel.CHUNK_KEEP_NONZERO, x.size(), List.of(x, ref), out); }

    @Override
    public void lerp(Tile a, Tile b, float t, Tile out) {
        sameSize(a, b); sameSize(a, out);
        // out = (u*a) + (t*b) with u = 1 - t rounded to float32 here, as the reference does
        elementwise(Kernel.LERP, a.size(), List.of(a, b), out, 1f - t, t);
    }

    @Override
    public void weightedSum(List<Tile> xs, float[] w, Tile out) {
        if (xs.isEmpty() || xs.size() != w.length) throw new IllegalArgumentException("weightedSum needs one weight per input, got " + xs.size() + " inputs and " + w.length + " weights");
        for (Tile t : xs) sameSize(t, out);
        if (out.size() == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer ptrs = op.keep(ops.pointerArray(op.readAll(xs))), dw = op.keep(ops.floatArray(w));
                ops.weightedSum(ptrs, dw, xs.size(), op.write(out), out.size());
            }
        }
    }

    /** The definition, op by op ({@link ChunkOps#storedVarianceByOps}). */
    @Override
    public void storedVariance(TensorView base, List<TensorView> xs, long from, List<Tile> scratch, Tile var) {
        ChunkOps.storedVarianceByOps(this, base, xs, from, scratch, var);
    }

    /** The definition, op by op ({@link ChunkOps#tiesCombineByOps}). */
    @Override
    public void tiesCombine(Tile base, List<Tile> taus, float[] w, boolean normalize, boolean scaled, float lambda, Tile sign, Tile out) {
        ChunkOps.tiesCombineByOps(this, base, taus, w, normalize, scaled, lambda, sign, out);
    }

    /** The definition, op by op ({@link ChunkOps#disjointMeanByOps}). */
    @Override
    public void disjointMean(Tile base, List<Tile> taus, float[] w, float floor, Tile sign, Tile out) {
        ChunkOps.disjointMeanByOps(this, base, taus, w, floor, sign, out);
    }

    @Override
    public void deltaVariance(Tile base, List<Tile> xs, Tile var) {
        ChunkOps.checkDeltaVariance(base, xs, var);
        long n = var.size();
        if (n == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer db = base == null ? null : op.read(base);
                List<DeviceBuffer> dx = new java.util.ArrayList<>(xs.size());
                for (Tile t : xs) dx.add(base == null ? op.read(t) : op.update(t));
                DeviceBuffer ptrs = op.keep(ops.pointerArray(dx)), dv = op.write(var);
                // without a base the kernel never reads its base argument
                dev.launch(Kernel.DELTA_VARIANCE, DeviceOps.grid(n, THREADS), THREADS, ptrs, db == null ? dv : db, base == null ? 0 : 1, xs.size(), dv, n);
            }
        }
    }

    @Override
    public void sphere(Tile base, List<Tile> xs, SphereSteps steps, Tile mean, Tile tangent) {
        SphereLoops.check(base, xs, steps, mean, tangent);
        long n = mean.size();
        if (n == 0) return;
        boolean tangents = steps.level().compareTo(SphereSteps.Level.TANGENTS) >= 0;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer db = base == null ? null : op.read(base);
                List<DeviceBuffer> dx = new java.util.ArrayList<>(xs.size());
                for (Tile t : xs) dx.add(op.update(t));
                DeviceBuffer ptrs = op.keep(ops.pointerArray(dx)), dp = op.keep(ops.floatArray(steps.packed()));
                DeviceBuffer dm = op.write(mean), dt = tangents ? op.write(tangent) : dm;
                // without a base (below TANGENTS: without a tangent) the kernel never reads that argument
                dev.launch(Kernel.SPHERE, DeviceOps.grid(n, THREADS), THREADS, ptrs, db == null ? dm : db, base == null ? 0 : 1, xs.size(),
                        steps.level().ordinal(), dp, dm, dt, n);
            }
        }
    }

    // ---------------------------------------------------------------- TIES

    @Override
    public void electSign(List<Tile> weighted, Tile sign) {
        for (Tile t : weighted) sameSize(t, sign);
        if (weighted.isEmpty()) {
            onHost(weighted, List.of(sign), () -> host.electSign(weighted, sign));   // the reference's own answer
            return;
        }
        if (sign.size() == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer ptrs = op.keep(ops.pointerArray(op.readAll(weighted)));
                ops.electSign(ptrs, weighted.size(), op.write(sign), sign.size());
            }
        }
    }

    @Override
    public void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) {
        disjoint("disjointMerge", weighted, w, sign, out,
                (ptrs, dw, s, o) -> ops.disjointMerge(ptrs, dw, weighted.size(), s, normalize, o, out.size()));
    }

    @Override
    public void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) {
        disjoint("disjointDivisor", weighted, w, sign, out,
                (ptrs, dw, s, o) -> launch(Kernel.CHUNK_DISJOINT_DIVISOR, out.size(), ptrs, dw, weighted.size(), s, o, out.size()));
    }

    /** A kernel over the weighted inputs (a device array of their pointers), their weights, the elected sign and the output. */
    private interface DisjointKernel {
        void run(DeviceBuffer inputs, DeviceBuffer weights, DeviceBuffer sign, DeviceBuffer out);
    }

    /** Checks the shapes of a disjoint op, puts its operands on the device and runs {@code kernel}. */
    private void disjoint(String name, List<Tile> weighted, float[] w, Tile sign, Tile out, DisjointKernel kernel) {
        if (weighted.size() != w.length) throw new IllegalArgumentException(name + " needs one weight per input");
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        if (out.size() == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer ptrs = op.keep(ops.pointerArray(op.readAll(weighted))), dw = op.keep(ops.floatArray(w));
                DeviceBuffer s = op.read(sign);
                kernel.run(ptrs, dw, s, op.write(out));
            }
        }
    }

    // ---------------------------------------------------------------- reductions

    @Override public void sumAbs(Tile x, long offset, BlockSum acc) { reduce(0, x, x, offset, acc); }

    @Override public void sumSquares(Tile x, long offset, BlockSum acc) { reduce(1, x, x, offset, acc); }

    @Override public void dot(Tile a, Tile b, long offset, BlockSum acc) { sameSize(a, b); reduce(2, a, b, offset, acc); }

    /**
     * The chunk's runs cut at tensor-index block edges (run 0 continues acc's open stripes), summed
     * on the device one warp per run: the sums of the runs that end at a block edge and the stripes
     * the last run leaves open come back, and are fed to acc in order.
     */
    private void reduce(int kind, Tile x, Tile y, long offset, BlockSum acc) {
        long n = x.size();
        if (n == 0) return;
        long first = Math.min(n, Reductions.BLOCK - offset % Reductions.BLOCK);
        long runs = 1 + Reductions.blocks(n - first);
        if (runs > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("chunk too large for one reduction: " + n);
        double[] sums = new double[(int) runs], open = acc.stripes();
        int threads = Kernel.CHUNK_BLOCK_SUMS.block, warps = threads / 32;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.read(x), dy = op.read(y), p = op.temp(8 * runs, "reduction partials");
                DeviceBuffer in = op.temp(8L * Reductions.STRIPES, "open stripes"), out = op.temp(8L * Reductions.STRIPES, "open stripes");
                dev.upload(MemorySegment.ofArray(open), in);
                dev.launch(Kernel.CHUNK_BLOCK_SUMS, DeviceOps.grid(runs, warps), threads, kind, dx, dy, n, offset, in, p, out, runs);
                dev.download(p, MemorySegment.ofArray(sums));
                if ((offset + n) % Reductions.BLOCK != 0) dev.download(out, MemorySegment.ofArray(open));
            }
        }
        acc.addChunk(offset, n, sums, open);
    }

    // ---------------------------------------------------------------- selection

    @Override
    public void absHistogram(Tile x, int high, long[] hist) {
        int bins = high < 0 ? 1 << 15 : 1 << 16;
        if (hist.length != bins) throw new IllegalArgumentException("histogram of " + hist.length + " bins, need " + bins);
        if (x.size() == 0) return;
        long[] h = new long[bins];
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.read(x), dh = op.temp(8L * bins, "histogram");
                dev.zero(dh, 8L * bins);
                launch(Kernel.CHUNK_ABS_HIST, x.size(), dx, x.size(), high, dh);
                dev.download(dh, MemorySegment.ofArray(h));
            }
        }
        for (int b = 0; b < bins; b++) hist[b] += h[b];
    }

    @Override
    public void keepRanks(Tile x, RankWindow w, long[] seen) {
        long n = x.size();
        if (w.all() || n == 0) return;
        if (w.none()) {
            fill(x, 0f);
            return;
        }
        int chunk = DeviceRankSelect.CHUNK;
        long pieces = (n + chunk - 1) / chunk;
        if (pieces > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("chunk too large for keepRanks: " + n);
        long[] up = new long[(int) pieces], dn = new long[(int) pieces];
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.update(x);
                DeviceBuffer cu = op.temp(8 * pieces, "tie counts"), cd = op.temp(8 * pieces, "tie counts");
                // how many of each 4096-element piece equal each end (upper counted always, as the reference carries it)
                dev.launch(Kernel.EQ_COUNT, pieces, 256, dx, n, w.upper(), 1, w.lower(), cu, cd);
                dev.download(cu, MemorySegment.ofArray(up));
                dev.download(cd, MemorySegment.ofArray(dn));
                // where each piece starts counting: the chunks before this one, then the pieces before it
                long u = seen[0], d = seen[1];
                for (int p = 0; p < pieces; p++) {
                    long cuP = up[p], cdP = dn[p];
                    up[p] = u;
                    dn[p] = d;
                    u += cuP;
                    d += cdP;
                }
                dev.upload(MemorySegment.ofArray(up), cu);
                dev.upload(MemorySegment.ofArray(dn), cd);
                dev.launch(Kernel.KEEP_RANK_MASK, pieces, 256, dx, n, w.upper(), w.hasUpper() ? 1 : 0, w.skipUpper(), w.lower(), w.keepLower(), cu, cd);
                seen[0] = u;
                seen[1] = d;
            }
        }
    }

    // ---------------------------------------------------------------- lanes

    private static void lanesFit(Tile t, Lanes lanes) {
        if (lanes.numel() != t.size()) throw new IllegalArgumentException("lanes " + lanes + " do not cover " + t);
    }

    @Override
    public void laneDots(Tile a, Tile b, Lanes lanes, double[] out) {
        sameSize(a, b); lanesFit(a, lanes);
        long count = lanes.count();
        if (out.length < count) throw new IllegalArgumentException("laneDots needs " + count + " outputs, got " + out.length);
        if (count == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer da = op.read(a), db = op.read(b), d = op.temp(8 * count, "lane dots");
                launch(Kernel.CHUNK_LANE_DOTS, count, da, db, lanes.length(), lanes.inner(), d, count);
                dev.download(d, MemorySegment.ofArray(out).asSlice(0, 8 * count));
            }
        }
    }

    @Override
    public void laneScale(Tile x, float[] s, Lanes lanes, Tile out) {
        sameSize(x, out); lanesFit(x, lanes);
        long count = lanes.count();
        if (s.length < count) throw new IllegalArgumentException("laneScale needs " + count + " factors, got " + s.length);
        if (x.size() == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.read(x), ds = op.temp(4 * count, "lane factors");
                dev.upload(MemorySegment.ofArray(s).asSlice(0, 4 * count), ds);
                launch(Kernel.CHUNK_LANE_SCALE, x.size(), dx, ds, lanes.length(), lanes.inner(), op.write(out), x.size());
            }
        }
    }

    /** Row-wise nuslerp's carried column dots: no kernel yet, so the reference runs on the chunk's host copy (docs/cuda.md). */
    @Override
    public void carriedLaneDots(Tile a, Tile b, Lanes lanes, long first, BlockSum[] acc) {
        onHost(List.of(a, b), List.of(), () -> host.carriedLaneDots(a, b, lanes, first, acc));
    }

    /** The bits are packed on the device; only they come down (n/8 bytes, not the chunk's 4n). */
    @Override
    public void nonZeroBits(Tile x, long from, long n, MemorySegment bits) {
        KeepBitLoops.check(x, from, n, bits);
        if (n == 0) return;
        long bytes = KeepBitLoops.words(n) * Long.BYTES;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.read(x), db = op.temp(bytes, "keep bits");
                launch(Kernel.CHUNK_NONZERO_BITS, KeepBitLoops.words(n), dx, from, n, db);
                dev.download(db, bits.asSlice(0, bytes));
            }
        }
    }

    /** The bits go up and are applied on the device. */
    @Override
    public void keepBits(Tile x, long from, long n, MemorySegment bits) {
        KeepBitLoops.check(x, from, n, bits);
        if (n == 0) return;
        long bytes = KeepBitLoops.words(n) * Long.BYTES;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.update(x), db = op.temp(bytes, "keep bits");
                dev.upload(bits.asSlice(0, bytes), db);
                launch(Kernel.CHUNK_KEEP_BITS, n, dx, from, n, db);
            }
        }
    }

    /** On the host with the reference's radix sort (no kernel yet): x comes down, the ranks go up with the next op that reads them. */
    @Override
    public void laneRanks(Tile x, Lanes lanes, Tile out) {
        onHost(List.of(x), List.of(out), () -> LaneRanks.run(par, x, lanes, out));
    }

    // Arcee Fusion (docs/methods.md, "arcee_fusion"): every op a kernel (kernels/chunk.cu, our exp/log
    // in kernels/mf_explog.cuh); the rows' KLs come down, as float32 they go up again

    @Override
    public void rowKl(Tile base, Tile other, long cols, double[] kl) {
        long rows = FusionLoops.checkRows(base, other, cols, kl.length);
        if (rows == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer db = op.read(base), d0 = op.read(other), dk = op.temp(8 * rows, "row KLs");
                launch(Kernel.FUSION_ROW_KL, rows, db, d0, cols, dk, rows);
                dev.download(dk, MemorySegment.ofArray(kl).asSlice(0, 8 * rows));
            }
        }
    }

    @Override
    public void fusionImportance(Tile base, Tile other, long cols, float[] kl, Tile imp) {
        long rows = FusionLoops.checkRows(base, other, cols, kl.length);
        sameSize(base, imp);
        if (rows == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer db = op.read(base), d0 = op.read(other), dk = op.keep(ops.floatArray(Arrays.copyOf(kl, (int) rows)));
                launch(Kernel.FUSION_IMPORTANCE, base.size(), db, d0, cols, dk, op.write(imp), base.size());
            }
        }
    }

    @Override
    public void orderHistogram(Tile x, int high, long[] hist) {
        FusionLoops.checkHistogram(high, hist);
        if (x.size() == 0) return;
        long[] h = new long[FusionLoops.BINS];
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.read(x), dh = op.temp(8L * h.length, "histogram");
                dev.zero(dh, 8L * h.length);
                launch(Kernel.CHUNK_ORDER_HIST, x.size(), dx, x.size(), high, dh);
                dev.download(dh, MemorySegment.ofArray(h));
            }
        }
        for (int b = 0; b < h.length; b++) hist[b] += h[b];
    }

    @Override
    public void fusionCombine(Tile base, Tile other, long cols, float[] kl, float t, Tile out) {
        long rows = FusionLoops.checkRows(base, other, cols, kl.length);
        sameSize(base, out);
        if (rows == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer db = op.read(base), d0 = op.read(other), dk = op.keep(ops.floatArray(Arrays.copyOf(kl, (int) rows)));
                launch(Kernel.FUSION_COMBINE, base.size(), db, d0, cols, dk, t, op.write(out), base.size());
            }
        }
    }

    // ---------------------------------------------------------------- random drops

    /** The definition, op by op ({@link ChunkOps#dellaDropByOps}; the ranks on the host). */
    @Override
    public void dellaDrop(Tile x, Lanes lanes, float slope, float top, long offset, long key, Tile scratch) {
        ChunkOps.dellaDropByOps(this, x, lanes, slope, top, offset, key, scratch);
    }

    @Override
    public void dropByProbability(Tile x, Tile p, long offset, long key) {
        sameSize(x, p);
        if (x.size() == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dp = op.read(p);
                dev.launch(Kernel.CHUNK_DROP_PROB, DeviceOps.grid(x.size() / 4 + 2, THREADS), THREADS, op.update(x), dp, x.size(), offset,
                        (int) key, (int) (key >>> 32));
            }
        }
    }

    @Override
    public void dropRandom(Tile x, long offset, float density, long key) {
        if (x.size() == 0) return;
        int thr = (int) Philox.threshold24(density);
        synchronized (lock) {
            try (OpBuffers op = op()) {
                dev.launch(Kernel.CHUNK_PHILOX_DROP, DeviceOps.grid(x.size() / 4 + 2, THREADS), THREADS, op.update(x), x.size(), offset,
                        (int) key, (int) (key >>> 32), thr);
            }
        }
    }

    // ---------------------------------------------------------------- lifetimes

    /** A tile went back to the pool: its device copy is dropped; a chunk runner's tile ends its tensor's kept chunks. */
    void released(Tile t) {
        synchronized (lock) {
            if (closed) return;
            try (OpBuffers op = op()) {
                tiles.forget(t);
                if (loadTargets.remove(t.data().address())) stored.clear();
            }
        }
    }

    /**
     * Frees this budget's unused device buffers when no chunked tensor is under way (nothing resident,
     * nothing kept), so the tile path has the GPU back; the backend calls it before its own ops.
     */
    void trimIfIdle() {
        synchronized (lock) {
            if (!closed && tiles.residentTiles() == 0 && stored.bytes() == 0) pool.trim();
        }
    }

    /** Device bytes held now (tests: never above the budget). */
    long deviceBytes() { synchronized (lock) { return pool.allocatedBytes(); } }

    /** Loads served from chunks kept on the device, and loads that copied their chunk up (tests). */
    long keptLoads() { synchronized (lock) { return stored.hits(); } }

    long uploadedLoads() { synchronized (lock) { return stored.uploads(); } }

    /** Loads that copied up a chunk again because it did not fit on the device (tests). */
    long reuploadedLoads() { synchronized (lock) { return stored.reuploads(); } }

    /** Tiles with a device copy now (tests). */
    int residentTiles() { synchronized (lock) { return tiles.residentTiles(); } }

    /** Drops every device copy and kept chunk (values only on the device are lost), then frees the pool. */
    @Override
    public void close() {
        synchronized (lock) {
            if (closed) return;
            closed = true;
            dev.makeCurrent();
            stored.clear();
            tiles.clear();
            pool.close();
        }
    }

    // ---------------------------------------------------------------- Karcher mean (kernels/karcher.cu)

    @Override
    public void karcherMean(List<Tile> xs, float[] scales, List<Tile> units, float[] w, float f, Tile u) {
        KarcherLoops.checkMean(xs, scales, units, w, u);
        long n = u.size();
        if (n == 0) return;
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.keep(ops.pointerArray(op.readAll(xs)));
                // written after every read: a unit over its input shares the input's buffer
                List<DeviceBuffer> du = new java.util.ArrayList<>(units.size());
                for (Tile t : units) du.add(op.write(t));
                // no units: the kernel takes the inputs' pointers in their place and does not write them
                DeviceBuffer dun = du.isEmpty() ? dx : op.keep(ops.pointerArray(du)), ds = op.keep(ops.floatArray(scales)), dw = op.keep(ops.floatArray(w));
                launch(Kernel.KARCHER_MEAN, n, dx, ds, dun, du.isEmpty() ? 0 : 1, dw, xs.size(), f, op.write(u), n);
            }
        }
    }

    @Override
    public void karcherTangent(List<Tile> units, Tile u, float[] minusCos, float[] coef, Tile t) {
        KarcherLoops.checkTangent(units, u, minusCos, coef, t);
        long n = t.size();
        if (n == 0) return;
        // no terms: T stays the +0.0 it starts as
        if (units.isEmpty()) { fill(t, 0f); return; }
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dun = op.keep(ops.pointerArray(op.readAll(units))), du = op.read(u);
                DeviceBuffer dc = op.keep(ops.floatArray(minusCos)), dk = op.keep(ops.floatArray(coef));
                launch(Kernel.KARCHER_TANGENT, n, dun, du, dc, dk, units.size(), 1f, op.write(t), n);
            }
        }
    }

    @Override
    public void karcherMeanTangent(List<Tile> xs, float[] scales, float[] w, float f, int[] terms, float[] minusCos, float[] coef, Tile t) {
        KarcherLoops.checkMeanTangent(xs, scales, w, terms, minusCos, coef, t);
        long n = t.size();
        if (n == 0) return;
        // no terms: T stays the +0.0 it starts as
        if (terms.length == 0) { fill(t, 0f); return; }
        synchronized (lock) {
            try (OpBuffers op = op()) {
                DeviceBuffer dx = op.keep(ops.pointerArray(op.readAll(xs))), ds = op.keep(ops.floatArray(scales)), dw = op.keep(ops.floatArray(w));
                float[] idx = new float[terms.length];
                for (int j = 0; j < terms.length; j++) idx[j] = terms[j];
                DeviceBuffer di = op.keep(ops.floatArray(idx)), dc = op.keep(ops.floatArray(minusCos)), dk = op.keep(ops.floatArray(coef));
                launch(Kernel.KARCHER_MEAN_TANGENT, n, dx, ds, dw, xs.size(), f, di, dc, dk, terms.length, 1f, op.write(t), n);
            }
        }
    }
}
