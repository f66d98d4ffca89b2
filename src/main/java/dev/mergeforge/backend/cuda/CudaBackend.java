package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.Philox;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.io.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * The CUDA backend: every op of {@link dev.mergeforge.backend.Backend} as hand-written kernels
 * (kernels/*.cu, PTX in the jar) launched through the JCuda driver API, giving the Java backend's
 * bits exactly. Tiles live in host memory: each op copies its inputs to pooled device buffers
 * through pinned staging, runs its kernels on one stream and copies the result back. F32 and F64
 * load/store are plain copies or widenings and stay on the inherited Java path.
 *
 * <p>Ops are serialised (one stream, one set of staging buffers). The next step is a merge-level
 * device-resident pipeline (tensors kept on the GPU across a method's ops, reads, copies and
 * kernels overlapped on several streams); {@link DeviceOps} is already that layer's API.
 */
public class CudaBackend extends JavaBackend {
    private static final Logger LOG = Logger.getLogger(CudaBackend.class.getName());
    private final Device dev;
    private final DeviceBufferPool pool;
    private final DeviceOps ops;
    private final DeviceRankSelect rank;
    /** RegMean's cuBLAS/cuSOLVER algebra, made on first use (only RegMean needs cuSOLVER). */
    private CudaDenseSolver solver;
    private DeviceLapack lapack;

    /** Opens GPU {@code device} (the N of {@code --device cuda:N}); throws with the reason when CUDA cannot run here. */
    public CudaBackend(int device) { this(open(device)); }

    /** The backend on any {@link Device} (tests run it on a host emulator of the kernels). */
    CudaBackend(Device dev) {
        super(0);
        this.dev = dev;
        this.pool = new DeviceBufferPool(dev);
        this.ops = new DeviceOps(dev, pool);
        this.rank = new DeviceRankSelect(ops);
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

    /** "cuda:0 (NVIDIA H100 80GB HBM3, 79 GiB)" for the log. */
    public String describe() { return dev.describe(); }

    /** GPU memory the backend's buffer pool holds now. */
    public long deviceBytes() { return pool.allocatedBytes(); }

    DeviceOps deviceOps() { return ops; }

    /**
     * RegMean's float64 right-hand sides (cuBLAS dgemm) and Cholesky solves (cuSOLVER) run on this
     * GPU. Without libcusolver or libcublas this throws the reason (one line): asked for the GPU,
     * we do not fall back silently.
     */
    @Override
    public synchronized Optional<DenseSolver> denseSolver() {
        if (solver == null) {
            Optional<String> why = CudaDenseSolver.unavailableReason();
            if (why.isPresent()) {
                throw new MergeforgeException("regmean: --backend cuda solves on the GPU with cuSOLVER, which is unavailable: " + why.get()
                        + "; or use --backend java to solve on the CPU");
            }
            dev.makeCurrent();
            lapack = new CusolverLapack(dev.stream());
            solver = new CudaDenseSolver(dev, pool, lapack, this);
            LOG.info("regmean: float64 products and solves on " + solver.name());
        }
        return Optional.of(solver);
    }

    // ---------------------------------------------------------------- one op's device buffers

    /** The buffers of one op, returned to the pool when it ends (also on failure). */
    private final class Op implements AutoCloseable {
        private final List<DeviceBuffer> held = new ArrayList<>();

        Op() { dev.makeCurrent(); }

        DeviceBuffer buffer(long bytes, String what) {
            DeviceBuffer b = pool.borrow(bytes, what);
            held.add(b);
            return b;
        }

        DeviceBuffer upload(MemorySegment src, String what) {
            DeviceBuffer b = buffer(src.byteSize(), what);
            dev.upload(src, b);
            return b;
        }

        DeviceBuffer upload(Tile t) { return upload(t.data(), "tile " + t); }

        List<DeviceBuffer> uploadAll(List<Tile> ts) {
            List<DeviceBuffer> out = new ArrayList<>(ts.size());
            for (Tile t : ts) out.add(upload(t));
            return out;
        }

        DeviceBuffer keep(DeviceBuffer b) {
            held.add(b);
            return b;
        }

        void download(DeviceBuffer b, Tile t) { dev.download(b, t.data()); }

        @Override public void close() { for (DeviceBuffer b : held) pool.release(b); }
    }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    // ---------------------------------------------------------------- conversion

    @Override
    public synchronized void load(TensorView src, Tile dst) {
        boolean bf16 = src.dtype() == DType.BF16;
        if (!(bf16 || src.dtype() == DType.F16) || src.numel() != dst.size() || dst.size() == 0) {
            super.load(src, dst);   // F32/F64 copies, size and dtype errors
            return;
        }
        try (Op op = new Op()) {
            DeviceBuffer s = op.upload(src.data(), "tensor " + src.name());
            DeviceBuffer d = op.buffer(4 * dst.size(), "tile " + dst);
            ops.load16(bf16, s, d, dst.size());
            op.download(d, dst);
        }
    }

    @Override
    public synchronized void store(Tile src, DType dtype, MemorySegment dst) {
        long n = src.size();
        boolean bf16 = dtype == DType.BF16;
        if (!(bf16 || dtype == DType.F16) || dst.byteSize() != n * dtype.byteSize() || n == 0) {
            super.store(src, dtype, dst);
            return;
        }
        try (Op op = new Op()) {
            DeviceBuffer s = op.upload(src);
            DeviceBuffer d = op.buffer(2 * n, "stored " + dtype);
            ops.store16(bf16, s, d, n);
            dev.download(d, dst);
        }
    }

    // ---------------------------------------------------------------- elementwise

    @Override
    public synchronized void sub(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        if (a.size() == 0) return;
        try (Op op = new Op()) {
            DeviceBuffer da = op.upload(a), db = op.upload(b);
            ops.sub(da, db, da, a.size());
            op.download(da, out);
        }
    }

    @Override
    public synchronized void add(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        if (a.size() == 0) return;
        try (Op op = new Op()) {
            DeviceBuffer da = op.upload(a), db = op.upload(b);
            ops.add(da, db, da, a.size());
            op.download(da, out);
        }
    }

    @Override
    public synchronized void scale(Tile x, float s, Tile out) {
        sameSize(x, out);
        if (x.size() == 0) return;
        try (Op op = new Op()) {
            DeviceBuffer d = op.upload(x);
            ops.scale(d, s, d, x.size());
            op.download(d, out);
        }
    }

    @Override
    public synchronized void axpy(float alpha, Tile x, Tile y) {
        sameSize(x, y);
        if (x.size() == 0) return;
        try (Op op = new Op()) {
            DeviceBuffer dx = op.upload(x), dy = op.upload(y);
            ops.axpy(alpha, dx, dy, x.size());
            op.download(dy, y);
        }
    }

    @Override
    public synchronized void weightedSum(List<Tile> xs, float[] w, Tile out) {
        if (xs.isEmpty() || xs.size() != w.length) throw new IllegalArgumentException("weightedSum needs one weight per input, got " + xs.size() + " inputs and " + w.length + " weights");
        for (Tile t : xs) sameSize(t, out);
        if (out.size() == 0) return;
        try (Op op = new Op()) {
            List<DeviceBuffer> in = op.uploadAll(xs);
            DeviceBuffer ptrs = op.keep(ops.pointerArray(in)), dw = op.keep(ops.floatArray(w));
            DeviceBuffer d = op.buffer(4 * out.size(), "tile " + out);
            ops.weightedSum(ptrs, dw, xs.size(), d, out.size());
            op.download(d, out);
        }
    }

    @Override
    public synchronized void lerp(Tile a, Tile b, float t, Tile out) {
        sameSize(a, b); sameSize(a, out);
        if (a.size() == 0) return;
        try (Op op = new Op()) {
            DeviceBuffer da = op.upload(a), db = op.upload(b);
            ops.lerp(da, db, t, da, a.size());
            op.download(da, out);
        }
    }

    // ---------------------------------------------------------------- reductions

    @Override
    public synchronized double sumAbs(Tile x) {
        if (x.size() == 0) return 0.0;
        try (Op op = new Op()) {
            return ops.sumAbs(op.upload(x), x.size());
        }
    }

    @Override
    public synchronized double sumSquares(Tile x) {
        if (x.size() == 0) return 0.0;
        try (Op op = new Op()) {
            return ops.sumSquares(op.upload(x), x.size());
        }
    }

    @Override
    public synchronized double dot(Tile a, Tile b) {
        sameSize(a, b);
        if (a.size() == 0) return 0.0;
        try (Op op = new Op()) {
            return ops.dot(op.upload(a), op.upload(b), a.size());
        }
    }

    // ---------------------------------------------------------------- sparsification

    @Override
    public synchronized void keepRankRange(Tile x, long from, long to) {
        long n = x.size();
        long f = Math.max(0, from), t = Math.min(n, to);
        // nothing kept, or everything kept: no selection needed (the Java path zeroes or returns)
        if (t <= f || (f == 0 && t == n)) {
            super.keepRankRange(x, from, to);
            return;
        }
        try (Op op = new Op()) {
            DeviceBuffer d = op.upload(x);
            rank.keepRankRange(d, n, f, t);
            op.download(d, x);
        }
    }

    @Override
    public synchronized void dropRescale(Tile x, float density, long key, Rescale mode) {
        long n = x.size();
        if (n == 0) return;
        try (Op op = new Op()) {
            DeviceBuffer d = op.upload(x);
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
            op.download(d, x);
        }
    }

    // ---------------------------------------------------------------- TIES

    @Override
    public synchronized void electSign(List<Tile> weighted, Tile sign) {
        for (Tile t : weighted) sameSize(t, sign);
        if (weighted.isEmpty() || sign.size() == 0) {
            super.electSign(weighted, sign);
            return;
        }
        try (Op op = new Op()) {
            DeviceBuffer ptrs = op.keep(ops.pointerArray(op.uploadAll(weighted)));
            DeviceBuffer s = op.buffer(4 * sign.size(), "sign tile");
            ops.electSign(ptrs, weighted.size(), s, sign.size());
            op.download(s, sign);
        }
    }

    @Override
    public synchronized void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointMerge needs one weight per input");
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        if (out.size() == 0) return;
        try (Op op = new Op()) {
            List<DeviceBuffer> in = op.uploadAll(weighted);
            DeviceBuffer ptrs = op.keep(ops.pointerArray(in)), dw = op.keep(ops.floatArray(w));
            DeviceBuffer s = op.upload(sign);
            DeviceBuffer d = op.buffer(4 * out.size(), "tile " + out);
            ops.disjointMerge(ptrs, dw, weighted.size(), s, normalize, d, out.size());
            op.download(d, out);
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
            super.relax(base, merged, importance, omega, axis, out);
            return;
        }
        try (Op op = new Op()) {
            DeviceBuffer b = op.upload(base), m = op.upload(merged), im = op.upload(importance);
            ops.relax(b, m, im, omega, axis, cols, m, n);
            op.download(m, out);
        }
    }

    @Override
    public synchronized void close() {
        try {
            dev.makeCurrent();
            dev.sync();
            if (lapack != null) lapack.close();
            pool.close();
        } finally {
            dev.close();
            super.close();
        }
    }
}
