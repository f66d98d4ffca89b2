package dev.mergeforge.backend;

import dev.mergeforge.io.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.List;

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
 *       canonical order of {@link Reductions}: blocks of {@link Reductions#BLOCK} consecutive
 *       elements summed left to right, then the block sums left to right.</li>
 *   <li>Random drops use {@link Philox} keyed by the caller's key and indexed by element position.</li>
 *   <li>Magnitude ranks order by |x| descending, ties by lower flat index first.</li>
 * </ul>
 * Aliasing: an output may be the same tile as an input of the same op unless the op says otherwise.
 */
public interface Backend extends AutoCloseable {

    /** Short name used by {@code --backend} and the log ("java", "native", "cuda"). */
    String name();

    // ---------------------------------------------------------------- conversion

    /** dst[i] = float32(src[i]); exact for bf16/f16/f32, round-to-nearest for f64. Sizes must match. */
    void load(TensorView src, Tile dst);

    /** dst = src converted to dtype (round to nearest even for bf16/f16); dst holds numel*dtype.byteSize bytes. */
    void store(Tile src, DType dtype, MemorySegment dst);

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

    // ---------------------------------------------------------------- reductions (canonical double order)

    /** Σ|x[i]| in the canonical order of {@link Reductions}. */
    double sumAbs(Tile x);

    /** Σ x[i]² (each square in double) in the canonical order. */
    double sumSquares(Tile x);

    /** Σ a[i]·b[i] (each product in double) in the canonical order. */
    double dot(Tile a, Tile b);

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

    // ---------------------------------------------------------------- sign election / disjoint merge (TIES)

    /** sign[i] = +1 if s ≥ 0 else -1, where s = weighted[0][i] + weighted[1][i] + ... left to right in float32. */
    void electSign(List<Tile> weighted, Tile sign);

    /**
     * Disjoint merge: for each i, over models j in order, W = weighted[j][i] is kept iff its sign
     * (+1, -1, or 0 for zero) equals sign[i]; acc = Σ kept W and div = Σ w[j] over kept, both
     * left to right in float32 from 0. out[i] = acc, or with {@code normalize} acc / (div == 0 ? 1 : div).
     */
    void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out);

    // ---------------------------------------------------------------- AIM

    /**
     * Activation-informed relaxation (METHODS.md §4), the last step of any method:
     * f = 1 - ((1 - omega) * imp[c]) and out = base + ((merged - base) * f), all float32, except that
     * out = merged exactly where f == 1 and out = base exactly where f == 0; c is the
     * input channel of element i: for {@link Axis#COLUMNS} (nn.Linear, out×in) c = i mod cols; for
     * {@link Axis#ROWS} (GPT-2 Conv1D, in×out) c = i / cols; for {@link Axis#ELEMENTS} (norm weights)
     * c = i. {@code out} may alias {@code merged}.
     */
    void relax(Tile base, Tile merged, Tile importance, float omega, Axis axis, Tile out);

    /** Which axis of a weight is the input-channel axis. */
    enum Axis { COLUMNS, ROWS, ELEMENTS }

    @Override
    default void close() {}
}
