package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.Reductions;
import dev.mergeforge.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The backend's ops on device-resident buffers: launches only, no host copies of tiles. Element
 * counts are passed explicitly (a buffer may be larger than its tile). {@link CudaBackend} wraps
 * these with uploads and downloads; {@link CudaBench} times them alone. The semantics are those of
 * {@link Backend}; each kernel's maths is stated in kernels/*.cu.
 */
public final class DeviceOps {
    static final int THREADS = 256;
    /** Grid cap of the grid-stride kernels: far more threads than any GPU keeps resident. */
    static final long MAX_GRID = 1 << 16;

    final Device dev;
    final DeviceBufferPool pool;
    final Launcher launcher;

    public DeviceOps(Device dev, DeviceBufferPool pool) { this(dev, pool, dev); }

    DeviceOps(Device dev, DeviceBufferPool pool, Launcher launcher) {
        this.dev = dev;
        this.pool = pool;
        this.launcher = launcher;
    }

    static long grid(long work, int threads) { return Math.max(1, Math.min(MAX_GRID, (work + threads - 1) / threads)); }

    private void elementwise(Kernel k, long n, Object... args) { launcher.launch(k, grid(n, THREADS), THREADS, args); }

    // ---------------------------------------------------------------- conversion

    /** dst = float32(src), src holding n bf16 or f16 values. */
    void load16(boolean bf16, DeviceBuffer src, DeviceBuffer dst, long n) {
        elementwise(bf16 ? Kernel.LOAD_BF16 : Kernel.LOAD_F16, n, src, dst, n);
    }

    /** dst = bf16 or f16 of src (round to nearest even). */
    void store16(boolean bf16, DeviceBuffer src, DeviceBuffer dst, long n) {
        elementwise(bf16 ? Kernel.STORE_BF16 : Kernel.STORE_F16, n, src, dst, n);
    }

    /** True when {@link #storeTo} can write {@code dst}: bf16, f16 or f32 bytes of exactly n &gt; 0 elements (else the host stores). */
    static boolean storesOnDevice(DType dtype, long n, MemorySegment dst) {
        boolean known = dtype == DType.BF16 || dtype == DType.F16 || dtype == DType.F32;
        return known && n > 0 && dst.byteSize() == n * dtype.byteSize();
    }

    /** dst = the n float32 values of {@code src} as dtype: bf16/f16 narrowed on the device and only the stored bytes copied back; f32 copied back. */
    void storeTo(OpBuffers op, DeviceBuffer src, DType dtype, MemorySegment dst, long n) {
        if (dtype == DType.F32) {
            dev.download(src, dst);
            return;
        }
        DeviceBuffer d = op.temp(2 * n, "stored " + dtype);
        store16(dtype == DType.BF16, src, d, n);
        dev.download(d, dst);
    }

    // ---------------------------------------------------------------- elementwise

    void sub(DeviceBuffer a, DeviceBuffer b, DeviceBuffer out, long n) { elementwise(Kernel.SUB, n, a, b, out, n); }

    public void add(DeviceBuffer a, DeviceBuffer b, DeviceBuffer out, long n) { elementwise(Kernel.ADD, n, a, b, out, n); }

    void scale(DeviceBuffer x, float s, DeviceBuffer out, long n) { elementwise(Kernel.SCALE, n, x, s, out, n); }

    void divScalar(DeviceBuffer x, float d, DeviceBuffer out, long n) { elementwise(Kernel.DIV_SCALAR, n, x, d, out, n); }

    void axpy(float alpha, DeviceBuffer x, DeviceBuffer y, long n) { elementwise(Kernel.AXPY, n, alpha, x, y, n); }

    /** out = ((1-t)*a) + (t*b) with 1-t rounded to float32 here, as the Java backend does. */
    void lerp(DeviceBuffer a, DeviceBuffer b, float t, DeviceBuffer out, long n) {
        float u = 1f - t;
        elementwise(Kernel.LERP, n, a, b, u, t, out, n);
    }

    /** ptrs holds xs.size() device addresses, w as many floats (see {@link #pointerArray}, {@link #floatArray}). */
    void weightedSum(DeviceBuffer ptrs, DeviceBuffer w, int k, DeviceBuffer out, long n) {
        elementwise(Kernel.WEIGHTED_SUM, n, ptrs, w, k, out, n);
    }

    // ---------------------------------------------------------------- reductions

    double sumAbs(DeviceBuffer x, long n) { return reduce(Kernel.BLOCK_SUM_ABS, n, x); }

    double sumSquares(DeviceBuffer x, long n) { return reduce(Kernel.BLOCK_SUM_SQUARES, n, x); }

    double dot(DeviceBuffer a, DeviceBuffer b, long n) { return reduce(Kernel.BLOCK_DOT, n, a, b); }

    /**
     * One warp per canonical block writes its partial sum (its stripes and tree on warp shuffles,
     * kernels/reduce.cu; blocks of {@code k.block} threads are k.block / 32 warps); the host adds
     * them in order.
     */
    private double reduce(Kernel k, long n, DeviceBuffer... in) {
        long nb = Reductions.blocks(n);
        if (nb > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("tensor too large for one reduction: " + n);
        if (nb == 0) return 0.0;
        DeviceBuffer partial = pool.borrow(nb * 8, "reduction partials");
        try {
            int threads = k.block;
            Object[] args = new Object[in.length + 3];
            System.arraycopy(in, 0, args, 0, in.length);
            args[in.length] = n;
            args[in.length + 1] = partial;
            args[in.length + 2] = nb;
            launcher.launch(k, grid(nb, threads / 32), threads, args);
            double[] p = new double[(int) nb];
            dev.download(partial, MemorySegment.ofArray(p));
            return Reductions.combine(p);
        } finally {
            pool.release(partial);
        }
    }

    // ---------------------------------------------------------------- DARE, TIES, AIM

    /** Zeroes x[i] where Philox.uniform24(key, i) >= threshold. */
    void philoxDrop(DeviceBuffer x, long n, long key, long threshold) {
        long groups = (n + 3) >>> 2;
        launcher.launch(Kernel.PHILOX_DROP, grid(groups, THREADS), THREADS, x, n, (int) key, (int) (key >>> 32), (int) threshold);
    }

    void electSign(DeviceBuffer ptrs, int k, DeviceBuffer sign, long n) { elementwise(Kernel.ELECT_SIGN, n, ptrs, k, sign, n); }

    void disjointMerge(DeviceBuffer ptrs, DeviceBuffer w, int k, DeviceBuffer sign, boolean normalize, DeviceBuffer out, long n) {
        elementwise(Kernel.DISJOINT_MERGE, n, ptrs, w, k, sign, normalize ? 1 : 0, out, n);
    }

    /** keep = 1 - omega (float32, here); cols as the Java backend reads it from the tile's shape. */
    void relax(DeviceBuffer base, DeviceBuffer merged, DeviceBuffer imp, float omega, Backend.Axis axis, long cols, DeviceBuffer out, long n) {
        float keep = 1f - omega;
        int ax = switch (axis) {
            case COLUMNS -> 0;
            case ROWS -> 1;
            case ELEMENTS -> 2;
        };
        elementwise(Kernel.RELAX, n, base, merged, imp, keep, ax, cols, out, n);
    }

    // ---------------------------------------------------------------- chunk.cu ops the tile path shares

    void fill(DeviceBuffer x, float v, long n) { elementwise(Kernel.CHUNK_FILL, n, x, v, n); }

    /** out = the sum of w[j] over the inputs whose sign equals sign[i] (ptrs, w as for disjointMerge). */
    void disjointDivisor(DeviceBuffer ptrs, DeviceBuffer w, int k, DeviceBuffer sign, DeviceBuffer out, long n) {
        elementwise(Kernel.CHUNK_DISJOINT_DIVISOR, n, ptrs, w, k, sign, out, n);
    }

    /** out[v] = lane v's dot (per-lane 4096 blocks, as PortableOps.laneDots), through the device buffer d of count doubles. */
    void laneDots(DeviceBuffer a, DeviceBuffer b, Lanes lanes, DeviceBuffer d, double[] out) {
        long count = lanes.count();
        launcher.launch(Kernel.CHUNK_LANE_DOTS, grid(count, THREADS), THREADS, a, b, lanes.length(), lanes.inner(), d, count);
        dev.download(d, MemorySegment.ofArray(out).asSlice(0, 8 * count));
    }

    /** out[i] = s[lane of i] * x[i], s holding one float per lane. */
    void laneScale(DeviceBuffer x, DeviceBuffer s, Lanes lanes, DeviceBuffer out, long n) {
        elementwise(Kernel.CHUNK_LANE_SCALE, n, x, s, lanes.length(), lanes.inner(), out, n);
    }

    // ---------------------------------------------------------------- small argument arrays

    /** A device array of the buffers' addresses (the caller releases it). */
    DeviceBuffer pointerArray(List<DeviceBuffer> bufs) {
        long[] addr = new long[bufs.size()];
        for (int i = 0; i < addr.length; i++) addr[i] = bufs.get(i).address();
        DeviceBuffer d = pool.borrow(8L * addr.length, "kernel pointer array");
        dev.upload(MemorySegment.ofArray(addr), d);
        return d;
    }

    /** A device copy of small float array (weights); the caller releases it. */
    DeviceBuffer floatArray(float[] values) {
        DeviceBuffer d = pool.borrow(4L * Math.max(1, values.length), "kernel weight array");
        dev.upload(MemorySegment.ofArray(values), d);
        return d;
    }
}
