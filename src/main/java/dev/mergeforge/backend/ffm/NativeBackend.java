package dev.mergeforge.backend.ffm;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Combination;
import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.NonFinite;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.bindings.MergeOps;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The native CPU backend: the hot ops run in libmergeops (C, AVX2 where the CPU has it, split over
 * {@code threads} worker threads at fixed chunk boundaries) through the generated FFM bindings in
 * {@code dev.mergeforge.bindings}; with {@link NativeMatMul} the only classes that import them. Every op gives the same
 * bits as the Java reference ({@code JavaBackend}) without inheriting from it, so the conformance tests compare two
 * implementations: the ops the C library does not have run {@link NativeChunkOps}' own loops, or loops written here.
 *
 * <p>Before every native call the Java side checks each segment against the element count it
 * passes (and that it is alive and reachable from this thread), so native code never touches memory
 * outside what it was given. Heap-backed tiles ({@code Tile.ofArray}) work: they are copied into a
 * confined arena for the call and copied back (see {@link Staging}); that costs a copy, so the
 * merge path uses pool tiles, which are native.
 */
public class NativeBackend implements Backend {
    private static final long F32 = 4;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT_UNALIGNED;
    /** The f16 NaN rule of this JVM's Float.float16ToFloat / floatToFloat16 (HotSpot uses F16C where it can). */
    private static final int NAN_MODE = probeNanMode();
    private static final String UNAVAILABLE = check();

    private final int nativeThreads;
    /** The worker threads of the loops that run in Java (the chunk ops' own loops, countNonZero, the probability drop). */
    private final Parallel par;

    /**
     * @param threads worker threads for native calls and for the ops written in Java; 0 or less means one per core
     * @throws MergeforgeException if the library is not available (the message says why)
     */
    public NativeBackend(int threads) {
        if (UNAVAILABLE != null) throw new MergeforgeException("native backend unavailable: " + UNAVAILABLE + " (or use --backend java)");
        this.nativeThreads = Math.max(0, threads);
        this.par = new Parallel(threads);
    }

    public NativeBackend() { this(0); }

    @Override public void close() { par.shutdown(); }

    /** True when libmergeops is loaded and matches these bindings. */
    public static boolean isAvailable() { return UNAVAILABLE == null; }

    /** Why the native backend is unavailable, or null when it is available. */
    public static String unavailableReason() { return UNAVAILABLE; }

    @Override public String name() { return "native"; }

    private final NativeChunkOps chunkOps = new NativeChunkOps(this);

    /** The {@code threads} argument of this backend's native calls (0 = one per online CPU). */
    int nativeThreads() { return nativeThreads; }

    /** The native chunk ops: its own class, which delegates to this backend's native ops and never to the Java reference's. */
    @Override public java.util.Optional<dev.mergeforge.backend.ChunkOps> chunkOps() { return java.util.Optional.of(chunkOps); }

    /**
     * "avx512", "avx2" or "portable": the kernel variant in use. The merge kernels have AVX2 and
     * portable variants (avx512 runs their AVX2 one); the calibration GEMM and attention also an
     * AVX-512 one.
     */
    public static String simd() {
        int level = MergeOps.mo_simd_level();
        return level == MergeOps.MO_SIMD_AVX512() ? "avx512" : level == MergeOps.MO_SIMD_AVX2() ? "avx2" : "portable";
    }

    /**
     * Caps the kernel variant for the whole process (tests compare them): the best the CPU has, or
     * the portable one; returns the variant now in use.
     */
    public static String forceSimd(boolean simd) {
        MergeOps.mo_set_simd_level(simd ? MergeOps.mo_simd_detected() : MergeOps.MO_SIMD_PORTABLE());
        return simd();
    }

    /**
     * Caps the kernel variant at "avx512", "avx2" or "portable" (at most what the CPU has; tests
     * compare the GEMM's variants); returns the variant now in use.
     */
    public static String forceSimd(String level) {
        MergeOps.mo_set_simd_level(switch (level) {
            case "avx512" -> MergeOps.MO_SIMD_AVX512();
            case "avx2" -> MergeOps.MO_SIMD_AVX2();
            case "portable" -> MergeOps.MO_SIMD_PORTABLE();
            default -> throw new IllegalArgumentException("unknown SIMD level '" + level + "': avx512, avx2 or portable");
        });
        return simd();
    }

    private static String check() {
        String err = NativeLibrary.error();
        if (err != null) return err;
        try {
            int v = MergeOps.mo_abi_version();
            if (v != MergeOps.MO_ABI_VERSION()) {
                return "libmergeops has ABI version " + v + " but the bindings expect " + MergeOps.MO_ABI_VERSION() + "; rebuild with `make native`";
            }
            return null;
        } catch (UnsatisfiedLinkError | IllegalCallerException e) {
            return "libmergeops does not export the expected symbols (" + e.getMessage() + "); rebuild with `make native`";
        }
    }

    /** The half-precision NaN conventions of this JVM's conversions, as mo_load's nan_mode. */
    static int nanMode() { return NAN_MODE; }

    private static int probeNanMode() {
        int mode = 0;
        if (Float.floatToRawIntBits(Float.float16ToFloat((short) 0x7c01)) == 0x7fc02000) mode |= 1; // MO_F16_NAN_QUIET_LOAD
        if (Float.floatToFloat16(Float.intBitsToFloat(0x7f800001)) == (short) 0x7e00) mode |= 2;     // MO_F16_NAN_QUIET_STORE
        return mode;
    }

    private static void sameSize(Tile a, Tile b) {
        if (a.size() != b.size()) throw new IllegalArgumentException("size mismatch: " + a + " vs " + b);
    }

    static void ok(int rc, String op) {
        if (rc == MergeOps.MO_ERR_NOMEM()) throw new OutOfMemoryError("native " + op + ": out of native memory for scratch buffers");
        if (rc != MergeOps.MO_OK()) throw new IllegalStateException("native " + op + " rejected its arguments (code " + rc + ")");
    }

    static int axis(Axis a) {
        return switch (a) {
            case COLUMNS -> MergeOps.MO_AXIS_COLUMNS();
            case ROWS -> MergeOps.MO_AXIS_ROWS();
            case ELEMENTS -> MergeOps.MO_AXIS_ELEMENTS();
        };
    }

    private static int nativeDType(DType d) {
        return switch (d) {
            case F32 -> MergeOps.MO_DTYPE_F32();
            case F16 -> MergeOps.MO_DTYPE_F16();
            case BF16 -> MergeOps.MO_DTYPE_BF16();
            case F64 -> MergeOps.MO_DTYPE_F64();
            case I64, I32, I16, I8, U8, BOOL -> -1;
        };
    }

    // ---------------------------------------------------------------- conversion

    @Override
    public void load(TensorView src, Tile dst) {
        int dt = loadable(src, dst);
        long n = dst.size();
        try (Staging st = new Staging()) {
            MemorySegment s = st.in(src.data(), n * src.dtype().byteSize(), "tensor " + src.name());
            MemorySegment d = st.out(dst.data(), n * F32, "load target " + dst);
            ok(MergeOps.mo_load(dt, s, d, n, NAN_MODE, nativeThreads), "load");
            st.commit();
        }
    }

    @Override
    public boolean loadChecked(TensorView src, Tile dst) {
        int dt = loadable(src, dst);
        long n = dst.size();
        try (Staging st = new Staging()) {
            MemorySegment s = st.in(src.data(), n * src.dtype().byteSize(), "tensor " + src.name());
            MemorySegment d = st.out(dst.data(), n * F32, "load target " + dst);
            MemorySegment flag = st.ints(new int[1]);
            ok(MergeOps.mo_load_checked(dt, s, d, n, NAN_MODE, flag, nativeThreads), "loadChecked");
            st.commit();
            return flag.get(java.lang.foreign.ValueLayout.JAVA_INT, 0) != 0;
        }
    }

    /** The native dtype of {@code src}, after the reference's checks (with its messages) that it is a float tensor of dst's size. */
    private static int loadable(TensorView src, Tile dst) {
        if (src.numel() != dst.size()) throw new IllegalArgumentException("load " + src.name() + ": " + src.numel() + " elements into " + dst);
        return loadableDType(src);
    }

    /** The native dtype of {@code src}, after the reference's check (with its message) that it is a float tensor. */
    static int loadableDType(TensorView src) {
        int dt = nativeDType(src.dtype());
        if (dt < 0) {
            throw new IllegalArgumentException("tensor " + src.name() + " in " + src.source() + " is " + src.dtype()
                    + ", not a float type; it cannot be merged");
        }
        return dt;
    }

    @Override
    public void store(Tile src, DType dtype, MemorySegment dst) {
        int dt = nativeDType(dtype);
        long n = src.size();
        if (dst.byteSize() != n * dtype.byteSize()) throw new IllegalArgumentException("store " + src + " as " + dtype + " into " + dst.byteSize() + " bytes");
        if (dt < 0) throw new IllegalArgumentException("cannot store a merged tensor as " + dtype);
        try (Staging st = new Staging()) {
            MemorySegment s = st.in(src.data(), n * F32, "store source " + src);
            MemorySegment d = st.out(dst, n * dtype.byteSize(), "store target");
            ok(MergeOps.mo_store(dt, s, d, n, NAN_MODE, nativeThreads), "store");
            st.commit();
        }
    }

    /** One thread: the merger calls this from its read-ahead thread while the merge thread computes. */
    @Override
    public long firstNonFinite(TensorView v) {
        int dt = nativeDType(v.dtype());
        if (dt < 0) return NonFinite.firstIndex(v); // not a float dtype: none
        long n = v.numel();
        try (Staging st = new Staging()) {
            long r = MergeOps.mo_first_nonfinite(dt, st.in(v.data(), n * v.dtype().byteSize(), "tensor " + v.name()), n, 1);
            if (r < 0) ok((int) r, "firstNonFinite");
            return r == n ? -1 : r;
        }
    }

    // ---------------------------------------------------------------- fused programs

    /** Fuses every combination of float-typed tensors of one size, with or without the relaxation (see {@code mo_combine_stored}). */
    @Override
    public boolean fusesCombination(Combination c, List<TensorView> models, TensorView base, DType outDtype) {
        if (models.size() != c.weights().length || nativeDType(outDtype) < 0) return false;
        long n = models.getFirst().numel();
        for (TensorView v : models) if (nativeDType(v.dtype()) < 0 || v.numel() != n) return false;
        return !c.readsBase() || (base != null && nativeDType(base.dtype()) >= 0 && base.numel() == n);
    }

    @Override
    public boolean combineStored(Combination c, List<TensorView> models, TensorView base, long offset, DType outDtype, MemorySegment dst) {
        if (!fusesCombination(c, models, base, outDtype) || offset < 0) {
            throw new IllegalArgumentException("not a fusable combination: " + c + " over " + models);
        }
        int k = models.size();
        long n = models.getFirst().numel();
        Combination.Relax r = c.relax();
        try (Staging st = new Staging()) {
            MemorySegment[] srcs = new MemorySegment[k];
            int[] dtypes = new int[k];
            for (int j = 0; j < k; j++) {
                TensorView v = models.get(j);
                srcs[j] = st.in(v.data(), n * v.dtype().byteSize(), "tensor " + v.name());
                dtypes[j] = nativeDType(v.dtype());
            }
            MemorySegment b = c.readsBase() ? st.in(base.data(), n * base.dtype().byteSize(), "tensor " + base.name()) : MemorySegment.NULL;
            int bt = c.readsBase() ? nativeDType(base.dtype()) : 0;
            MemorySegment d = st.out(dst, n * outDtype.byteSize(), "combineStored target");
            MemorySegment flag = st.ints(new int[1]);
            MemorySegment imp = r == null ? MemorySegment.NULL : st.floats(r.importance());
            int rc = MergeOps.mo_combine_stored(st.addresses(srcs), st.ints(dtypes), k, st.floats(c.weights()), b, bt, c.taskVectors() ? 1 : 0,
                    st.floats(c.scales()), c.scales().length,
                    imp, r == null ? 0 : r.importance().length, r == null ? 0f : r.omega(), r == null ? 0 : axis(r.axis()), r == null ? 1 : r.cols(), offset,
                    d, nativeDType(outDtype), n, NAN_MODE, flag, nativeThreads);
            if (rc == MergeOps.MO_ERR_ARG() && r != null) {
                throw new IllegalArgumentException("importance of " + r.importance().length + " channels does not cover elements "
                        + offset + ".." + (offset + n - 1) + " along " + r.axis() + " with " + r.cols() + " columns");
            }
            ok(rc, "combineStored");
            st.commit();
            return flag.get(java.lang.foreign.ValueLayout.JAVA_INT, 0) != 0;
        }
    }

    // ---------------------------------------------------------------- elementwise

    @Override
    public void sub(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        long n = a.size();
        try (Staging st = new Staging()) {
            MergeOps.mo_sub(st.in(a.data(), n * F32, "sub a"), st.in(b.data(), n * F32, "sub b"), st.out(out.data(), n * F32, "sub out"), n, nativeThreads);
            st.commit();
        }
    }

    @Override
    public void add(Tile a, Tile b, Tile out) {
        sameSize(a, b); sameSize(a, out);
        long n = a.size();
        try (Staging st = new Staging()) {
            MergeOps.mo_add(st.in(a.data(), n * F32, "add a"), st.in(b.data(), n * F32, "add b"), st.out(out.data(), n * F32, "add out"), n, nativeThreads);
            st.commit();
        }
    }

    @Override
    public void scale(Tile x, float s, Tile out) {
        sameSize(x, out);
        long n = x.size();
        try (Staging st = new Staging()) {
            MergeOps.mo_scale(st.in(x.data(), n * F32, "scale x"), s, st.out(out.data(), n * F32, "scale out"), n, nativeThreads);
            st.commit();
        }
    }

    @Override
    public void axpy(float alpha, Tile x, Tile y) {
        sameSize(x, y);
        long n = x.size();
        try (Staging st = new Staging()) {
            MergeOps.mo_axpy(alpha, st.in(x.data(), n * F32, "axpy x"), st.inOut(y.data(), n * F32, "axpy y"), n, nativeThreads);
            st.commit();
        }
    }

    @Override
    public void weightedSum(List<Tile> xs, float[] w, Tile out) {
        if (xs.isEmpty() || xs.size() != w.length) {
            throw new IllegalArgumentException("weightedSum needs one weight per input, got " + xs.size() + " inputs and " + w.length + " weights");
        }
        for (Tile t : xs) sameSize(t, out);
        long n = out.size();
        try (Staging st = new Staging()) {
            MemorySegment ptrs = st.addresses(staged(st, xs, n, "weightedSum input"));
            ok(MergeOps.mo_weighted_sum(ptrs, st.floats(w), w.length, st.out(out.data(), n * F32, "weightedSum out"), n, nativeThreads), "weightedSum");
            st.commit();
        }
    }

    @Override
    public void lerp(Tile a, Tile b, float t, Tile out) {
        sameSize(a, b); sameSize(a, out);
        long n = a.size();
        try (Staging st = new Staging()) {
            MergeOps.mo_lerp(st.in(a.data(), n * F32, "lerp a"), st.in(b.data(), n * F32, "lerp b"), t, st.out(out.data(), n * F32, "lerp out"), n, nativeThreads);
            st.commit();
        }
    }

    private static MemorySegment[] staged(Staging st, List<Tile> xs, long n, String what) {
        MemorySegment[] segs = new MemorySegment[xs.size()];
        for (int j = 0; j < segs.length; j++) segs[j] = st.in(xs.get(j).data(), n * F32, what + " " + j);
        return segs;
    }

    // ---------------------------------------------------------------- reductions

    @Override
    public double sumAbs(Tile x) {
        long n = x.size();
        try (Staging st = new Staging()) { return MergeOps.mo_sum_abs(st.in(x.data(), n * F32, "sumAbs x"), n, nativeThreads); }
    }

    @Override
    public double sumSquares(Tile x) {
        long n = x.size();
        try (Staging st = new Staging()) { return MergeOps.mo_sum_squares(st.in(x.data(), n * F32, "sumSquares x"), n, nativeThreads); }
    }

    @Override
    public double dot(Tile a, Tile b) {
        sameSize(a, b);
        long n = a.size();
        try (Staging st = new Staging()) { return MergeOps.mo_dot(st.in(a.data(), n * F32, "dot a"), st.in(b.data(), n * F32, "dot b"), n, nativeThreads); }
    }

    // ---------------------------------------------------------------- sparsification

    @Override
    public void keepRankRange(Tile x, long from, long to) {
        long n = x.size();
        try (Staging st = new Staging()) {
            ok(MergeOps.mo_keep_rank_range(st.inOut(x.data(), n * F32, "keepRankRange x"), n, from, to, nativeThreads), "keepRankRange");
            st.commit();
        }
    }

    @Override
    public void dropRescale(Tile x, float density, long key, Rescale mode) {
        long n = x.size();
        int m = switch (mode) {
            case NONE -> MergeOps.MO_RESCALE_NONE();
            case DENSITY -> MergeOps.MO_RESCALE_DENSITY();
            case L1 -> MergeOps.MO_RESCALE_L1();
        };
        try (Staging st = new Staging()) {
            ok(MergeOps.mo_drop_rescale(st.inOut(x.data(), n * F32, "dropRescale x"), n, density, key, m, nativeThreads), "dropRescale");
            st.commit();
        }
    }

    // ---------------------------------------------------------------- TIES

    @Override
    public void electSign(List<Tile> weighted, Tile sign) {
        if (weighted.isEmpty()) throw new IllegalArgumentException("electSign needs at least one input");
        for (Tile t : weighted) sameSize(t, sign);
        long n = sign.size();
        try (Staging st = new Staging()) {
            MemorySegment ptrs = st.addresses(staged(st, weighted, n, "electSign input"));
            ok(MergeOps.mo_elect_sign(ptrs, weighted.size(), st.out(sign.data(), n * F32, "electSign sign"), n, nativeThreads), "electSign");
            st.commit();
        }
    }

    @Override
    public void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out) {
        if (weighted.size() != w.length) throw new IllegalArgumentException("disjointMerge needs one weight per input");
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        if (weighted.isEmpty()) { chunkOps.fill(out, 0f); return; } // nothing kept: acc = 0 (and 0 / 1 normalized)
        long n = out.size();
        try (Staging st = new Staging()) {
            MemorySegment ptrs = st.addresses(staged(st, weighted, n, "disjointMerge input"));
            MemorySegment sg = st.in(sign.data(), n * F32, "disjointMerge sign");
            ok(MergeOps.mo_disjoint_merge(ptrs, st.floats(w), w.length, sg, normalize ? 1 : 0,
                    st.out(out.data(), n * F32, "disjointMerge out"), n, nativeThreads), "disjointMerge");
            st.commit();
        }
    }

    // ---------------------------------------------------------------- AIM

    @Override
    public void relax(Tile base, Tile merged, Tile importance, float omega, Axis axis, Tile out) {
        sameSize(base, merged); sameSize(base, out);
        long n = base.size(), cols = base.cols();
        long channels = axis.channels(n, cols);
        if (importance.size() != channels) {
            throw new IllegalArgumentException("importance has " + importance.size() + " channels, tensor " + base.shape() + " has " + channels + " along " + axis);
        }
        if (n == 0) return;
        int ax = axis(axis);
        try (Staging st = new Staging()) {
            ok(MergeOps.mo_relax(st.in(base.data(), n * F32, "relax base"), st.in(merged.data(), n * F32, "relax merged"),
                    st.in(importance.data(), channels * F32, "relax importance"), channels, omega, ax, cols,
                    st.out(out.data(), n * F32, "relax out"), n, nativeThreads), "relax");
            st.commit();
        }
    }

    // ---------------------------------------------------------------- ops without a C kernel: the chunk ops' own loops

    @Override public void mul(Tile a, Tile b, Tile out) { chunkOps.mul(a, b, out); }

    @Override public void div(Tile a, Tile b, Tile out) { chunkOps.div(a, b, out); }

    @Override public void abs(Tile x, Tile out) { chunkOps.abs(x, out); }

    @Override public void clamp(Tile x, float lo, float hi, Tile out) { chunkOps.clamp(x, lo, hi, out); }

    @Override public void affine(Tile x, float a, float b, Tile out) { chunkOps.affine(x, a, b, out); }

    @Override public void fill(Tile x, float v) { chunkOps.fill(x, v); }

    @Override public void keepWhereNonZero(Tile x, Tile ref, Tile out) { chunkOps.keepWhereNonZero(x, ref, out); }

    @Override public void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) {
        for (Tile t : weighted) sameSize(t, out);
        sameSize(sign, out);
        chunkOps.disjointDivisor(weighted, w, sign, out);
    }

    @Override public void laneDots(Tile a, Tile b, Lanes lanes, double[] out) { chunkOps.laneDots(a, b, lanes, out); }

    @Override public void laneScale(Tile x, float[] s, Lanes lanes, Tile out) { chunkOps.laneScale(x, s, lanes, out); }

    @Override public void laneRanks(Tile x, Lanes lanes, Tile out) { chunkOps.laneRanks(x, lanes, out); }

    /** Counts on the bits: an element is non-zero unless all its bits but the sign are clear (NaN counts). */
    @Override
    public long countNonZero(Tile x) {
        long n = x.size();
        long[] counts = new long[(int) ((n + Parallel.CHUNK - 1) / Parallel.CHUNK)];
        MemorySegment a = x.data();
        par.forRange(n, (lo, hi) -> {
            long c = 0;
            for (long i = lo; i < hi; i++) if ((a.getAtIndex(I, i) & 0x7fffffff) != 0) c++;
            counts[(int) (lo / Parallel.CHUNK)] = c;
        });
        long total = 0;
        for (long c : counts) total += c;
        return total;
    }

    /**
     * The drop by the chunk ops' loop, then the rescale: DENSITY divides by p[i] wherever p[i] &gt; 0 (an
     * element can be kept only there, and a dropped +0.0 divided by a positive p stays +0.0); L1 by
     * the native sums and scale, as {@link #dropRescale}.
     */
    @Override
    public void dropByProbability(Tile x, Tile p, long key, Rescale mode) {
        sameSize(x, p);
        double before = mode == Rescale.L1 ? sumAbs(x) : 0.0;
        chunkOps.dropByProbability(x, p, 0, key);
        switch (mode) {
            case NONE -> { }
            case DENSITY -> {
                MemorySegment a = x.data(), pr = p.data();
                par.forRange(x.size(), (lo, hi) -> {
                    for (long i = lo; i < hi; i++) {
                        float pi = pr.getAtIndex(F, i);
                        if (pi > 0f) a.setAtIndex(F, i, a.getAtIndex(F, i) / pi);
                    }
                });
            }
            case L1 -> {
                double after = sumAbs(x);
                if (!(before < 1e-7 || after < 1e-7)) scale(x, (float) (before / after), x);
            }
        }
    }
}
