package dev.mergeforge.backend;

import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Optional;

/**
 * The numeric ops merge methods are built from. Every op works on float32 {@link Tile}s the caller
 * owns; ops never allocate their outputs. dtype conversion happens only in {@link #load} and
 * {@link #store}.
 *
 * <p><b>Exact semantics</b> (every backend must give the same bits as {@code JavaBackend}):
 * <ul>
 *   <li>Elementwise arithmetic is float32 with each operation rounded as written: no fused
 *       multiply-add, no reassociation (native code builds with {@code -ffp-contract=off}, CUDA with
 *       {@code -fmad=false}).</li>
 *   <li>Reductions ({@link #sumAbs}, {@link #sumSquares}, {@link #dot}) accumulate in double in the
 *       canonical order of {@link Reductions} (docs/methods.md): blocks of {@link Reductions#BLOCK}
 *       consecutive elements, each summed as 64 stripes (position mod 64, each left to right)
 *       combined by a fixed pairwise tree, then the block sums left to right.</li>
 *   <li>Random drops use {@link Philox} keyed by the caller's key and indexed by element position.</li>
 *   <li>Magnitude ranks order by |x| descending, ties by lower flat index first.</li>
 * </ul>
 * Aliasing: an output may be the same tile as an input of the same op unless the op says otherwise.
 *
 * <p>Ops added after the first contract (mul … disjointDivisor, the lane ops) have default
 * implementations in {@link PortableOps} / {@link LaneRanks}: plain loops over host memory that are
 * the reference semantics, so a backend that does not accelerate them still gives the same bits.
 */
public interface Backend extends AutoCloseable {

    /** Short name used by {@code --backend} and the log ("java", "native", "cuda"). */
    String name();

    // ---------------------------------------------------------------- conversion

    /** dst[i] = float32(src[i]); exact for bf16/f16/f32, round-to-nearest for f64. Sizes must match. */
    void load(TensorView src, Tile dst);

    /**
     * {@link #load}, also telling whether a loaded value is NaN or ±Inf: the merger's input check
     * rides along with the load instead of a separate pass over the stored bytes. True may also
     * mean a finite float64 beyond the float range (it loads as ±Inf), so the caller confirms on the
     * stored bits with {@link #firstNonFinite}.
     */
    default boolean loadChecked(TensorView src, Tile dst) {
        load(src, dst);
        for (long i = 0, n = dst.size(); i < n; i++) if (!Float.isFinite(dst.get(i))) return true;
        return false;
    }

    /** dst = src converted to dtype (round to nearest even for bf16/f16); dst holds numel*dtype.byteSize bytes. */
    void store(Tile src, DType dtype, MemorySegment dst);

    /** The lowest element index of {@code v} holding NaN or ±Inf, or -1 when none does (or v is not a float dtype). */
    default long firstNonFinite(TensorView v) { return NonFinite.firstIndex(v); }

    // ---------------------------------------------------------------- elementwise

    /** out[i] = a[i] - b[i] */
    void sub(Tile a, Tile b, Tile out);

    /** out[i] = a[i] + b[i] */
    void add(Tile a, Tile b, Tile out);

    /** out[i] = s * x[i] */
    void scale(Tile x, float s, Tile out);

    /** y[i] = y[i] + (alpha * x[i]) — the product rounded, then the sum. */
    void axpy(float alpha, Tile x, Tile y);

    /**
     * out[i] = (((w0*x0[i]) + (w1*x1[i])) + ...) left to right starting from w0*x0[i], each product
     * rounded. {@code out} may alias {@code xs.get(0)} only.
     */
    void weightedSum(List<Tile> xs, float[] w, Tile out);

    /** out[i] = ((1-t)*a[i]) + (t*b[i]), with 1-t computed in float32. */
    void lerp(Tile a, Tile b, float t, Tile out);

    /** out[i] = a[i] * b[i] */
    default void mul(Tile a, Tile b, Tile out) { PortableOps.mul(PortableOps.COMMON, a, b, out); }

    /** out[i] = a[i] / b[i] (IEEE: x/0 is ±inf or NaN). */
    default void div(Tile a, Tile b, Tile out) { PortableOps.div(PortableOps.COMMON, a, b, out); }

    /** out[i] = |x[i]| (clears the sign bit). */
    default void abs(Tile x, Tile out) { PortableOps.abs(PortableOps.COMMON, x, out); }

    /**
     * out[i] = min(max(x[i], lo), hi) with a NaN x[i] kept as NaN (torch.clamp); pass
     * {@code Float.NEGATIVE_INFINITY} / {@code Float.POSITIVE_INFINITY} for a one-sided clamp. lo &lt;= hi.
     */
    default void clamp(Tile x, float lo, float hi, Tile out) { PortableOps.clamp(PortableOps.COMMON, x, lo, hi, out); }

    /** out[i] = (a * x[i]) + b — the product rounded, then the sum. */
    default void affine(Tile x, float a, float b, Tile out) { PortableOps.affine(PortableOps.COMMON, x, a, b, out); }

    /** x[i] = v */
    default void fill(Tile x, float v) { PortableOps.fill(PortableOps.COMMON, x, v); }

    /** out[i] = ref[i] == 0 (either sign) ? +0.0 : x[i] — applies the support of {@code ref} as a mask. */
    default void keepWhereNonZero(Tile x, Tile ref, Tile out) { PortableOps.keepWhereNonZero(PortableOps.COMMON, x, ref, out); }

    // ---------------------------------------------------------------- reductions (canonical double order)

    /** Σ|x[i]| in the canonical order of {@link Reductions}. */
    double sumAbs(Tile x);

    /** Σ x[i]² (each square in double) in the canonical order. */
    double sumSquares(Tile x);

    /** Σ a[i]·b[i] (each product in double) in the canonical order. */
    double dot(Tile a, Tile b);

    /** Number of elements that are not ±0.0 (NaN counts as non-zero). */
    default long countNonZero(Tile x) { return PortableOps.countNonZero(PortableOps.COMMON, x); }

    // ---------------------------------------------------------------- per-lane (row/column) ops, see {@link Lanes}

    /**
     * out[v] = Σ_k a[lane v, k] · b[lane v, k] for every lane, each product in double, summed in the
     * canonical order of {@link Reductions} applied to the lane's own elements in k order (so a
     * single {@link Lanes#whole} lane gives exactly {@link #dot}). {@code out.length} ≥ lanes.count().
     */
    default void laneDots(Tile a, Tile b, Lanes lanes, double[] out) { PortableOps.laneDots(PortableOps.COMMON, a, b, lanes, out); }

    /** out[i] = s[v] * x[i] where v is the lane of element i. {@code s.length} ≥ lanes.count(). */
    default void laneScale(Tile x, float[] s, Lanes lanes, Tile out) { PortableOps.laneScale(PortableOps.COMMON, x, s, lanes, out); }

    /**
     * Magnitude rank of every element within its lane, written as a float (exact: lanes are
     * shorter than 2^24): out[i] = the number of elements j of the same lane with |x_j| &gt; |x_i|, or
     * |x_j| = |x_i| and j before i. Rank 0 is the largest |x| of the lane. Must run in time linear in
     * the lane length (e.g. a stable radix sort on the bits of |x|), never a comparison sort of the
     * whole tensor. {@code out} must not alias {@code x}. Inputs are finite.
     */
    default void laneRanks(Tile x, Lanes lanes, Tile out) { LaneRanks.run(PortableOps.COMMON, x, lanes, out); }

    // ---------------------------------------------------------------- sparsification

    /**
     * Keeps the entries whose magnitude rank lies in [from, to) and sets the others to +0.0. Rank 0
     * is the largest |x|; equal magnitudes rank by lower flat index first. Must find the thresholds
     * by selection on the float bits (radix select / histogram), not by sorting. Top-k trimming is
     * {@code keepRankRange(x, 0, k)}. Inputs are finite.
     */
    void keepRankRange(Tile x, long from, long to);

    /**
     * Random drop and rescale (DARE): element i is kept iff {@code Philox.uniform24(key, i) < T},
     * T = ceil(density · 2^24) computed in double; dropped entries become +0.0. Then by {@code mode}:
     * NONE leaves the kept values; DENSITY divides each by density (float32); L1 multiplies each by
     * the float32 factor (float)(before/after) of the {@link #sumAbs} before and after the drop,
     * unless either is below 1e-7 (then no rescale).
     */
    void dropRescale(Tile x, float density, long key, Rescale mode);

    /** How {@link #dropRescale} restores the task vector's scale after a drop. */
    enum Rescale { NONE, DENSITY, L1 }

    /**
     * Random drop with a per-element keep probability p[i]: element i is kept iff
     * {@code Philox.uniform24(key, i) < Philox.threshold24(p[i])} (p[i] read as float, widened to
     * double); dropped entries become +0.0. Then by {@code mode}: NONE leaves the kept values;
     * DENSITY divides each kept x[i] by p[i] (float32); L1 rescales exactly as {@link #dropRescale}.
     * {@code p} must not alias {@code x}.
     */
    default void dropByProbability(Tile x, Tile p, long key, Rescale mode) { PortableOps.dropByProbability(PortableOps.COMMON, x, p, key, mode); }

    // ---------------------------------------------------------------- sign election / disjoint merge (TIES)

    /** sign[i] = +1 if s ≥ 0 else -1, where s = weighted[0][i] + weighted[1][i] + ... left to right in float32. */
    void electSign(List<Tile> weighted, Tile sign);

    /**
     * Disjoint merge: for each i, over models j in order, W = weighted[j][i] is kept iff its sign
     * (+1, -1, or 0 for zero) equals sign[i]; acc = Σ kept W and div = Σ w[j] over kept, both
     * left to right in float32 from 0. out[i] = acc, or with {@code normalize} acc / (div == 0 ? 1 : div).
     */
    void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out);

    /**
     * The divisor of {@link #disjointMerge}: out[i] = Σ w[j] over the models j whose weighted[j][i]
     * is kept (same sign rule), left to right in float32 from 0 — without the 0 → 1 replacement.
     * Elementwise: {@code out} may alias any input.
     */
    default void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) { PortableOps.disjointDivisor(PortableOps.COMMON, weighted, w, sign, out); }

    // ---------------------------------------------------------------- fused programs

    /**
     * Whether {@link #combineStored} computes {@code c} over these stored tensors on this backend.
     * False by default, and always for the Java reference: the caller then runs the ops.
     */
    default boolean fusesCombination(Combination c, List<TensorView> models, TensorView base, DType outDtype) {
        return false;
    }

    /**
     * Computes {@code c} straight from the stored tensors into {@code dst} (the result in
     * {@code outDtype}), with exactly the bits of loading every input, {@link Combination#run} and
     * {@link #store}. Only for what {@link #fusesCombination} accepts. {@code models} align with
     * {@code c.weights()}; {@code base} is required when {@code c.readsBase()}, else ignored.
     * {@code dst} must not overlap an input. The views may be a piece of the tensors (the merger
     * computes a tensor chunk by chunk): {@code offset} is the index of their first element in the
     * whole tensor, which places elements on their input channels for the relaxation.
     *
     * @return whether some input element, read as float32, was NaN or ±Inf: the merger's input check
     *         rides along with this pass (a finite float64 beyond the float range reads as ±Inf too,
     *         so the caller confirms on the stored bits with {@link #firstNonFinite})
     */
    default boolean combineStored(Combination c, List<TensorView> models, TensorView base, long offset, DType outDtype, MemorySegment dst) {
        throw new UnsupportedOperationException("the " + name() + " backend does not fuse combinations");
    }

    // ---------------------------------------------------------------- AIM

    /**
     * Activation-informed relaxation (docs/aim.md, "The relaxation"), the last step of any method:
     * f = 1 - ((1 - omega) * imp[c]) and out = base + ((merged - base) * f), all float32, except that
     * out = merged exactly where f == 1 and out = base exactly where f == 0; c is the
     * input channel of element i: for {@link Axis#COLUMNS} (nn.Linear, out×in) c = i mod cols; for
     * {@link Axis#ROWS} (GPT-2 Conv1D, in×out) c = i / cols; for {@link Axis#ELEMENTS} (norm weights)
     * c = i. {@code out} may alias {@code merged}.
     */
    void relax(Tile base, Tile merged, Tile importance, float omega, Axis axis, Tile out);

    /** Which axis of a weight is the input-channel axis. */
    enum Axis {
        COLUMNS, ROWS, ELEMENTS;

        /** Input channels of a tensor of n elements whose last dimension is cols, along this axis. */
        public long channels(long n, long cols) {
            return switch (this) {
                case COLUMNS -> cols;
                case ROWS -> n / Math.max(1, cols);
                case ELEMENTS -> n;
            };
        }
    }

    // ---------------------------------------------------------------- float64 linear algebra

    /**
     * RegMean's float64 products and Cholesky solves on this backend's device, or empty (the
     * default) when they run on the CPU. A backend that has a device but cannot solve there throws
     * {@link dev.mergeforge.errors.MergeforgeException} with the reason rather than answer empty.
     */
    default Optional<DenseSolver> denseSolver() { return Optional.empty(); }

    // ---------------------------------------------------------------- chunked methods

    /**
     * The narrow chunk ops methods written as passes over chunks run on ({@link ChunkOps}), or
     * empty when this backend merges such methods through whole-tensor tiles (CUDA, for now).
     * Every backend answers explicitly: no default.
     */
    Optional<ChunkOps> chunkOps();

    // ---------------------------------------------------------------- residency hooks (no-ops for host backends)

    /**
     * Call before reading or writing a tile's memory directly ({@link Tile#get}, {@link Tile#set},
     * {@link Tile#data}) instead of through the ops. A backend that keeps tiles in its own memory
     * (CUDA) copies their current values into the tile's memory and forgets its own copies, so the
     * direct reads see the values the ops wrote and the next op sees the direct writes. Host backends
     * do nothing.
     */
    default void hostAccess(Tile... tiles) {}

    /**
     * The caller is done with this tile: its values are dead and its memory may be reused for
     * anything (a {@link dev.mergeforge.tensor.TilePool} calls it on release when made with this
     * backend as its listener). A backend forgets its copies without copying them back.
     */
    default void released(Tile tile) {}

    /**
     * A hint that these tensors will be {@link #load}ed soon (called by the merge's read-ahead thread
     * once their pages are in): a backend may start copying their stored bytes toward its own
     * memory now, beside the ops of the current tensor. Thread-safe; loads of other tensors stay
     * correct. Host backends do nothing.
     */
    default void prefetch(List<TensorView> views) {}

    @Override
    default void close() {}
}
