package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * The CUDA backend: the ops of {@link dev.mergeforge.backend.Backend} as hand-written kernels
 * (kernels/*.cu, PTX in the jar) launched through the JCuda driver API, giving the Java backend's
 * bits exactly; the three ops without a kernel run the Java code on the host ({@link HostFallbacks}).
 * Chunked methods run on {@link CudaChunkOps} within the device budget ({@link #deviceMemory}).
 *
 * <p><b>Residency.</b> Tiles stay on the GPU between ops ({@link Residency}): {@code load} copies
 * a tensor's stored bytes (bf16/f16: half of float32) and widens them on the device, ops read and
 * write device buffers, and {@code store} narrows on the device and copies back only the stored
 * bytes. A tile's values reach host memory only when host code asks: {@link #hostAccess} (methods
 * that compute on tile memory themselves), an op without a kernel ({@link HostFallbacks}), a
 * {@code load}/{@code store} that touches host memory overlapping a resident tile. A tile released
 * to the pool ({@link #released}) is forgotten without a copy. Heap tiles ({@code Tile.ofArray}) are
 * copied in and out on every op.
 *
 * <p><b>Streams.</b> Kernels and their copies run in order on the compute stream. The merge's
 * read-ahead thread calls {@link #prefetch} for the next tensor: its stored bytes go to the GPU on
 * a second stream through their own pinned staging ({@link Prefetcher}) while this tensor's
 * kernels run; its {@code load} then only orders the compute stream after that copy. Results come
 * back synchronously on the compute stream ({@code store} waits for its copy).
 *
 * <p>Ops are serialised (the backend's lock); only a prefetch's copies run beside them.
 */
public class CudaBackend extends HostFallbacks {
    private static final Logger LOG = Logger.getLogger(CudaBackend.class.getName());
    private static final boolean PREFETCH = Boolean.parseBoolean(System.getProperty("mergeforge.cuda.prefetch", "true"));

    private final Device dev;
    private final DeviceBufferPool pool;
    private final DeviceOps ops;
    private final DeviceRankSelect rank;
    /** RegMean's cuBLAS/cuSOLVER algebra, made on first use (only RegMean needs cuSOLVER). */
    private CudaDenseSolver solver;
    private DeviceLapack lapack;
    /** Where RegMean's dense algebra comes from: null = cuSOLVER/cuBLAS (checked on first use); tests give a host stand-in. */
    private final java.util.function.Supplier<DeviceLapack> lapacks;
    private final Residency residency;
    private final Prefetcher prefetcher;
    /** After close nothing is resident: hostAccess and released have nothing to do (a pool may outlive the backend). */
    private boolean closed;
    /** Device bytes the chunk ops may hold ({@code --device-memory}); 0 until set: 3/4 of the GPU's free memory when they open. */
    private long deviceMemory;
    /** The chunk ops, opened on first use (their budget fixed from then on). */
    private CudaChunkOps chunks;

    /** Opens GPU {@code device} (the N of {@code --device cuda:N}); throws with the reason when CUDA cannot run here. */
    public CudaBackend(int device) { this(open(device)); }

    /** The backend on any {@link Device} (tests run it on a host emulator of the kernels). */
    CudaBackend(Device dev) { this(dev, null); }

    /** On any device, with RegMean's dense algebra from {@code lapacks} (null: cuSOLVER/cuBLAS). */
    CudaBackend(Device dev, java.util.function.Supplier<DeviceLapack> lapacks) {
        this.dev = dev;
        this.lapacks = lapacks;
        this.pool = new DeviceBufferPool(dev);
        this.ops = new DeviceOps(dev, pool);
        this.rank = new DeviceRankSelect(ops);
        this.residency = new Residency(dev, pool);
        this.prefetcher = new Prefetcher(dev, pool, this);
    }

    private static Device open(int device) {
        Optional<String> why = unavailableReason();
        if (why.isPresent()) throw new MergeforgeException("--backend cuda is unavailable: " + why.get());
        return new CudaContext(device);
    }

    /** The GPU index of a {@code --device} value: "cuda" is 0, "cuda:N" is N. */
    public static int deviceIndex(String spec) {
        if (spec.equals("cuda")) return 0;
        if (spec.matches("cuda:[0-9]{1,4}")) return Integer.parseInt(spec.substring(5));
        throw new ConfigException("--device " + spec + ": expected cuda or cuda:N with N the GPU index shown by nvidia-smi");
    }

    /** Empty when the CUDA backend can run on this machine, else a one-line reason naming the fix. Never throws. */
    public static Optional<String> unavailableReason() { return CudaAvailability.reason(); }

    @Override public String name() { return "cuda"; }

    /** Chunked methods run as passes over device-resident chunks within the device budget (docs/cuda.md, "Chunked methods"). */
    @Override public synchronized java.util.Optional<dev.mergeforge.backend.ChunkOps> chunkOps() { return java.util.Optional.of(chunks()); }

    /**
     * Sets the device memory the chunk ops may use ({@code --device-memory}): chunk sizes follow
     * from it, and input chunks stay on the device between passes while they fit in it. Before the
     * first chunked tensor only.
     */
    public synchronized void deviceMemory(long bytes) {
        if (bytes <= 0) throw new ConfigException("--device-memory " + bytes + ": must be positive (e.g. 8GB)");
        if (chunks != null) throw new IllegalStateException("the device budget is fixed once the chunk ops are open");
        deviceMemory = bytes;
    }

    synchronized CudaChunkOps chunks() {
        if (closed) throw new IllegalStateException("the cuda backend is closed");
        if (chunks == null) {
            long budget = deviceMemory;
            if (budget == 0) {
                dev.makeCurrent();
                budget = dev instanceof CudaContext c ? c.freeBytes() / 4 * 3 : Long.MAX_VALUE;
            }
            chunks = new CudaChunkOps(this, dev, budget, par);
        }
        return chunks;
    }

    /** "cuda:0 (NVIDIA H100 80GB HBM3, 79 GiB)" for the log. */
    public String describe() { return dev.describe(); }

    /** GPU memory the backend's buffer pool holds now. */
    public synchronized long deviceBytes() { return pool.allocatedBytes(); }

    /** Tiles with a device copy now (tests). */
    synchronized int residentTiles() { return residency.residentTiles(); }

    /** Prefetched tensors not yet loaded (tests). */
    synchronized int pendingPrefetches() { return prefetcher.pendingCount(); }

    DeviceOps deviceOps() { return ops; }

    /**
     * RegMean's float64 right-hand sides (cuBLAS dgemm) and Cholesky solves (cuSOLVER) run on this
     * GPU. Without libcusolver or libcublas this throws the reason (one line): asked for the GPU,
     * we do not fall back silently.
     */
    @Override
    public synchronized Optional<DenseSolver> denseSolver() {
        if (solver == null) {
            Optional<String> why = lapacks != null ? Optional.empty() : CudaDenseSolver.unavailableReason();
            if (why.isPresent()) {
                throw new MergeforgeException("regmean: --backend cuda solves on the GPU with cuSOLVER, which is unavailable: " + why.get()
                        + "; or use --backend java to solve on the CPU");
            }
            dev.makeCurrent();
            lapack = lapacks != null ? lapacks.get() : new CusolverLapack(dev.stream());
            solver = new CudaDenseSolver(dev, pool, lapack, this);
            LOG.info("regmean: float64 products and solves on " + solver.name());
        }
        return Optional.of(solver);
    }

    /** The tile stays on the device: the check reads the stored bytes on the host (exact, so no false alarm for float64). */
    @Override
    public boolean loadChecked(TensorView src, Tile dst) {
        load(src, dst);
        return firstNonFinite(src) >= 0;
    }

    /** The merger's input check reads the mapped stored bytes on the host: no tiles, nothing resident involved. */
    @Override
    public long firstNonFinite(TensorView v) { return super.firstNonFinite(v); }

    /**
     * Not fused here: the tile path already uploads only the stored bytes, keeps the tiles resident
     * between the ops and downloads only the stored result (see docs/cuda.md).
     */
    @Override
    public boolean fusesCombination(Combination c, List<TensorView> models, TensorView base, DType outDtype) { return false; }

    @Override
    public boolean combineStored(Combination c, List<TensorView> models, TensorView base, long offset, DType outDtype, MemorySegment dst) {
        throw new UnsupportedOperationException("the cuda backend does not fuse combinations; use its ops");
    }

    /** The device buffers of one op, opened at its start (binding the device to the thread) and closed at its end. */
    private OpBuffers op() {
        if (chunks != null) chunks.trimIfIdle();   // the chunk budget's spare buffers go back before the tile path allocates
        return new OpBuffers(dev, pool, residency);
    }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    // ---------------------------------------------------------------- residency hooks

    @Override
    synchronized void onHost(List<Tile> reads, List<Tile> writes) {
        try (OpBuffers op = op()) {
            for (Tile t : reads) residency.toHost(t, true);
            for (Tile t : writes) residency.toHost(t, false);
        }
    }

    @Override
    public synchronized void hostAccess(Tile... tiles) {
        if (closed) return;
        try (OpBuffers op = op()) {
            for (Tile t : tiles) residency.toHost(t, false);
        }
    }

    @Override
    public synchronized void released(Tile tile) {
        if (closed) return;
        try (OpBuffers op = op()) {
            residency.forget(tile);
        }
        if (chunks != null) chunks.released(tile);
    }

    /**
     * Not synchronized: the copies run outside the backend's lock (see {@link Prefetcher}).
     * {@code -Dmergeforge.cuda.prefetch=false} turns prefetching off (to measure what it gains).
     */
    @Override
    public void prefetch(List<TensorView> views) {
        if (PREFETCH) prefetcher.prefetch(views);
    }

    // ---------------------------------------------------------------- conversion

    /** bf16/f16: the stored bytes copied (or prefetched) and widened on the device; f32: copied as they are; f64 on the host. */
    @Override
    public synchronized void load(TensorView src, Tile dst) {
        DType dt = src.dtype();
        boolean narrow = dt == DType.BF16 || dt == DType.F16;
        if (!(narrow || dt == DType.F32) || src.numel() != dst.size() || dst.size() == 0) {
            onHost(List.of(), List.of(dst));
            super.load(src, dst);   // F64 widening, size and dtype errors
            return;
        }
        try (OpBuffers op = op()) {
            residency.settle(src.data());   // (a view over tile memory reads the tile's current values)
            DeviceBuffer s = prefetcher.claim(src);
            if (!narrow && Residency.kept(dst)) {
                // f32: the stored bytes are the values, so the prefetched buffer becomes the tile's
                if (s != null) residency.adopt(dst, s);
                else dev.upload(src.data(), residency.write(dst));
                return;
            }
            if (s != null) {
                op.keep(s);
            } else {
                s = op.temp(src.data().byteSize(), "tensor " + src.name());
                dev.upload(src.data(), s);
            }
            if (narrow) ops.load16(dt == DType.BF16, s, op.write(dst), dst.size());
            else dev.download(s, dst.data());   // f32 into a heap tile
        }
    }

    /** bf16/f16: narrowed on the device, only the stored bytes copied back; f32: copied back; f64 on the host. */
    @Override
    public synchronized void store(Tile src, DType dtype, MemorySegment dst) {
        long n = src.size();
        if (!DeviceOps.storesOnDevice(dtype, n, dst)) {
            onHost(List.of(src), List.of());
            super.store(src, dtype, dst);
            return;
        }
        try (OpBuffers op = op()) {
            residency.settle(dst);   // host memory of a tile is about to be overwritten
            ops.storeTo(op, op.read(src), dtype, dst, n);
        }
    }

    // ---------------------------------------------------------------- elementwise

    /** One elementwise kernel over tiles of equal size ({@link OpBuffers#elementwise}). */
    private synchronized void elementwise(Kernel k, List<Tile> reads, Tile out, Object... scalars) {
        for (Tile t : reads) sameSize(t, out);
        try (OpBuffers op = op()) {
            op.elementwise(k, out.size(), reads, out, scalars);
        }
    }

    @Override public void sub(Tile a, Tile b, Tile out) { elementwise(Kernel.SUB, List.of(a, b), out); }

    @Override public void add(Tile a, Tile b, Tile out) { elementwise(Kernel.ADD, List.of(a, b), out); }

    @Override public void scale(Tile x, float s, Tile out) { elementwise(Kernel.SCALE, List.of(x), out, s); }

    @Override public void mul(Tile a, Tile b, Tile out) { elementwise(Kernel.CHUNK_MUL, List.of(a, b), out); }

    @Override public void div(Tile a, Tile b, Tile out) { elementwise(Kernel.CHUNK_DIV, List.of(a, b), out); }

    @Override public void abs(Tile x, Tile out) { elementwise(Kernel.CHUNK_ABS, List.of(x), out); }

    @Override
    public void clamp(Tile x, float lo, float hi, Tile out) {
        if (!(lo <= hi)) throw new IllegalArgumentException("clamp bounds " + lo + " > " + hi);
        elementwise(Kernel.CHUNK_CLAMP, List.of(x), out, lo, hi);
    }

    @Override public void affine(Tile x, float a, float b, Tile out) { elementwise(Kernel.CHUNK_AFFINE, List.of(x), out, a, b); }

    @Override public void keepWhereNonZero(Tile x, Tile ref, Tile out) { elementwise(Kernel.CHUNK_KEEP_NONZERO, List.of(x, ref), out); }

    @Override
    public synchronized void fill(Tile x, float v) {
        if (x.size() == 0) return;
        try (OpBuffers op = op()) {
            ops.fill(op.write(x), v, x.size());
        }
    }

    @Override
    public synchronized void axpy(float alpha, Tile x, Tile y) {
        sameSize(x, y);
        if (x.size() == 0) return;
        try (OpBuffers op = op()) {
            DeviceBuffer dx = op.read(x);
            ops.axpy(alpha, dx, op.update(y), x.size());
        }
    }

    @Override
    public synchronized void weightedSum(List<Tile> xs, float[] w, Tile out) {
        if (xs.isEmpty() || xs.size() != w.length) throw new IllegalArgumentException("weightedSum needs one weight per input, got " + xs.size() + " inputs and " + w.length + " weights");
        for (Tile t : xs) sameSize(t, out);
        if (out.size() == 0) return;
        try (OpBuffers op = op()) {
            List<DeviceBuffer> in = op.readAll(xs);
            DeviceBuffer ptrs = op.keep(ops.pointerArray(in)), dw = op.keep(ops.floatArray(w));
            ops.weightedSum(ptrs, dw, xs.size(), op.write(out), out.size());
        }
    }

    /** out = (u*a) + (t*b) with u = 1 - t rounded to float32 here, as the Java backend does. */
    @Override public void lerp(Tile a, Tile b, float t, Tile out) { elementwise(Kernel.LERP, List.of(a, b), out, 1f - t, t); }

    // ---------------------------------------------------------------- lanes

    @Override
    public synchronized void laneDots(Tile a, Tile b, Lanes lanes, double[] out) {
        sameSize(a, b);
        if (lanes.numel() != a.size()) throw new IllegalArgumentException("lanes " + lanes + " do not cover " + a);
        if (out.length < lanes.count()) throw new IllegalArgumentException("laneDots needs " + lanes.count() + " outputs, got " + out.length);
        if (lanes.count() == 0) return;
        try (OpBuffers op = op()) {
            DeviceBuffer da = op.read(a), db = op.read(b);
            ops.laneDots(da, db, lanes, op.temp(8 * lanes.count(), "lane dots"), out);
        }
    }

    @Override
    public synchronized void laneScale(Tile x, float[] s, Lanes lanes, Tile out) {
        sameSize(x, out);
        if (lanes.numel() != x.size()) throw new IllegalArgumentException("lanes " + lanes + " do not cover " + x);
        if (s.length < lanes.count()) throw new IllegalArgumentException("laneScale needs " + lanes.count() + " factors, got " + s.length);
        if (x.size() == 0) return;
        try (OpBuffers op = op()) {
            DeviceBuffer dx = op.read(x), ds = op.keep(ops.floatArray(java.util.Arrays.copyOf(s, (int) lanes.count())));
            ops.laneScale(dx, ds, lanes, op.write(out), x.size());
        }
    }

    // ---------------------------------------------------------------- reductions

    @Override
    public synchronized double sumAbs(Tile x) {
        if (x.size() == 0) return 0.0;
        try (OpBuffers op = op()) {
            return ops.sumAbs(op.read(x), x.size());
        }
    }

    @Override
    public synchronized double sumSquares(Tile x) {
        if (x.size() == 0) return 0.0;
        try (OpBuffers op = op()) {
            return ops.sumSquares(op.read(x), x.size());
        }
    }

    @Override
    public synchronized double dot(Tile a, Tile b) {
        sameSize(a, b);
        if (a.size() == 0) return 0.0;
        try (OpBuffers op = op()) {
            return ops.dot(op.read(a), op.read(b), a.size());
        }
    }

    // ---------------------------------------------------------------- sparsification

    @Override
    public synchronized void keepRankRange(Tile x, long from, long to) {
        long n = x.size();
        long f = Math.max(0, from), t = Math.min(n, to);
        // nothing kept, or everything kept: no selection needed (the Java path zeroes or returns)
        if (t <= f || (f == 0 && t == n)) {
            onHost(List.of(x), List.of(x));
            super.keepRankRange(x, from, to);
            return;
        }
        try (OpBuffers op = op()) {
            rank.keepRankRange(op.update(x), n, f, t);
        }
    }

    @Override
    public synchronized void dropRescale(Tile x, float density, long key, Rescale mode) {
        long n = x.size();
        if (n == 0) return;
        try (OpBuffers op = op()) {
            DeviceBuffer d = op.update(x);
            double before = mode == Rescale.L1 ? ops.sumAbs(d, n) : 0.0;
            ops.philoxDrop(d, n, key, Philox.threshold24(density));
            switch (mode) {
                case NONE -> { }
                // x / density for every entry (dropped zeros stay zeros)
                case DENSITY -> ops.divScalar(d, density, d, n);
                // x * (float)(before / after) unless either sum is below 1e-7
                case L1 -> {
                    double after = ops.sumAbs(d, n);
                    if (!(before < 1e-7 || after < 1e-7)) ops.scale(d, (float) (before / after), d, n);
                }
            }
        }
    }

    // ---------------------------------------------------------------- TIES

    @Override
    public synchronized void electSign(List<Tile> weighted, Tile sign) {
        for (Tile t : weighted) sameSize(t, sign);
        if (weighted.isEmpty() || sign.size() == 0) {
            onHost(weighted, List.of(sign));
            super.electSign(weighted, sign);
            return;
        }
        try (OpBuffers op = op()) {
            DeviceBuffer ptrs = op.keep(ops.pointerArray(op.readAll(weighted)));
            ops.electSign(ptrs, weighted.size(), op.write(sign), sign.size());
        }
    }

    @Override
    public synchronized void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointMerge needs one weight per input");
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        if (out.size() == 0) return;
        try (OpBuffers op = op()) {
            List<DeviceBuffer> in = op.readAll(weighted);
            DeviceBuffer ptrs = op.keep(ops.pointerArray(in)), dw = op.keep(ops.floatArray(w));
            DeviceBuffer s = op.read(sign);
            ops.disjointMerge(ptrs, dw, weighted.size(), s, normalize, op.write(out), out.size());
        }
    }

    @Override
    public synchronized void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointDivisor needs one weight per input");
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        if (out.size() == 0) return;
        try (OpBuffers op = op()) {
            DeviceBuffer ptrs = op.keep(ops.pointerArray(op.readAll(weighted))), dw = op.keep(ops.floatArray(w));
            ops.disjointDivisor(ptrs, dw, weighted.size(), op.read(sign), op.write(out), out.size());
        }
    }

    // ---------------------------------------------------------------- AIM

    @Override
    public synchronized void relax(Tile base, Tile merged, Tile importance, float omega, Axis axis, Tile out) {
        sameSize(base, merged); sameSize(base, out);
        long n = base.size(), cols = base.cols();
        long channels = axis.channels(n, cols);
        // a zero-width axis (the Java path reports it) or an importance/shape mismatch (the Java path's message)
        if (n == 0 || cols == 0 || importance.size() != channels) {
            onHost(List.of(base, merged, importance), List.of(out));
            super.relax(base, merged, importance, omega, axis, out);
            return;
        }
        try (OpBuffers op = op()) {
            DeviceBuffer b = op.read(base), m = op.read(merged), im = op.read(importance);
            ops.relax(b, m, im, omega, axis, cols, op.write(out), n);
        }
    }

    /** Drops prefetches and device copies (values only on the device are lost: store what you need first), then the GPU. */
    @Override
    public void close() {
        synchronized (prefetcher.copyLock) {
            synchronized (this) {
                if (closed) return;
                closed = true;
                try {
                    dev.makeCurrent();
                    if (chunks != null) chunks.close();
                    prefetcher.close();
                    residency.clear();
                    if (lapack != null) lapack.close();
                    dev.sync();
                    pool.close();
                } finally {
                    dev.close();
                    super.close();
                }
            }
        }
    }
}
