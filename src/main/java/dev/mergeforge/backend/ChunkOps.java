package dev.mergeforge.backend;

import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The narrow core of chunk ops that merge methods written as passes over chunks are built from
 * (see {@code dev.mergeforge.merge.chunk}). A chunk is a {@link Tile} holding elements
 * [offset, offset + size) of a tensor, in float32 in host memory; ops never allocate their outputs.
 * Every backend that streams implements every op: there are no defaults, so no op can silently run
 * on memory the backend does not own (backends whose tiles are host memory share the three
 * residency answers through {@link HostChunkOps}). Optional capabilities (fused stored combine,
 * dense solves) stay separate interfaces.
 *
 * <p>Exact semantics are those of {@link Backend}: float32 elementwise ops rounded as written, no
 * fused multiply-add. What chunking adds:
 * <ul>
 *   <li>Reductions continue a {@link BlockSum} in the canonical order of {@link Reductions}, with
 *       blocks placed by the element's index in the whole tensor, so a sum over chunks of any size
 *       gives the bits of the whole-tensor {@link Backend#sumAbs}.</li>
 *   <li>Random drops draw {@link Philox} at the element's index in the whole tensor.</li>
 *   <li>Magnitude selection is a {@link RankWindow} found from histograms of the |x| bits
 *       ({@link #absHistogram}) and applied in chunk order with carried tie counts.</li>
 * </ul>
 * Aliasing: an output may be the same tile as an input of the same op unless the op says otherwise.
 */
public interface ChunkOps {

    /** Short name of the backend these ops run on. */
    String name();

    /**
     * Elements per chunk for a program holding {@code tiles} chunk tiles of a tensor named
     * {@code tensor}: {@code wanted} (a multiple of {@code align}), or fewer where the backend's own
     * memory holds less (a device budget) or it runs smaller chunks faster (the host backends'
     * cache-sized cap, {@link HostChunkOps#HOST_CHUNK}); a budget too small for one chunk of {@code align}
     * elements is a one-line error naming the smallest that works.
     */
    long fitChunk(String tensor, int tiles, long align, long wanted);

    /**
     * Runs host code that reads {@code reads} and writes {@code writes} (chunk tiles) through their
     * memory rather than through these ops: the only way method code may touch a chunk tile's
     * values itself. Before {@code body}, every tile's current values are in its host memory; after,
     * the ops see what {@code body} wrote to {@code writes}.
     */
    void onHost(List<Tile> reads, List<Tile> writes, Runnable body);

    /**
     * dst[i] = float32(src[from + i]) for i &lt; dst.size(). Returns whether a loaded value is NaN or
     * ±Inf (or a float64 beyond the float range): the caller confirms on the stored bits.
     */
    boolean load(TensorView src, long from, Tile dst);

    /**
     * As {@link #load}, the same float32 values, without looking for NaN or ±Inf: for stored bytes a
     * {@link #load} of the same tensor has checked already (the later passes of a chunked merge read
     * each chunk's bytes again; the first pass's check stands for them).
     */
    void reload(TensorView src, long from, Tile dst);

    /**
     * Whether {@link #load} of the {@code n} elements of {@code src} at {@code from} would read no
     * host bytes (a device backend kept that chunk's stored bytes from an earlier pass): the caller
     * need not page them in.
     */
    boolean holds(TensorView src, long from, long n);

    /** dst = src converted to dtype (round to nearest even for bf16/f16); dst holds size*dtype.byteSize bytes. */
    void store(Tile src, DType dtype, MemorySegment dst);

    /** out[i] = a[i] - b[i] */
    void sub(Tile a, Tile b, Tile out);

    /** out[i] = a[i] + b[i] */
    void add(Tile a, Tile b, Tile out);

    /** out[i] = s * x[i] */
    void scale(Tile x, float s, Tile out);

    /** out[i] = x[i] / d (float32 division, not a reciprocal). */
    void divide(Tile x, float d, Tile out);

    /** out[i] = a[i] * b[i] */
    void mul(Tile a, Tile b, Tile out);

    /** out[i] = a[i] / b[i] (IEEE). */
    void div(Tile a, Tile b, Tile out);

    /** out[i] = |x[i]| (clears the sign bit). */
    void abs(Tile x, Tile out);

    /** As {@link Backend#clamp}: NaN kept; lo &lt;= hi. */
    void clamp(Tile x, float lo, float hi, Tile out);

    /** x[i] = v */
    void fill(Tile x, float v);

    /** out[i] = (a * x[i]) + b — the product rounded, then the sum. */
    void affine(Tile x, float a, float b, Tile out);

    /** As {@link Backend#weightedSum}. */
    void weightedSum(List<Tile> xs, float[] w, Tile out);

    /**
     * SCE's spread of the task vectors at each element, in one sweep (docs/methods.md, "sce"): when
     * {@code base} is given, first x_j[i] = x_j[i] - base[i] in place (the task vectors τ_j); then
     * μ = (1/N)·(τ_0 + τ_1 + … + τ_{N-1}) (the sum left to right, then the product with the float32
     * 1/N) and var[i] = (τ_0 - μ)² + (τ_1 - μ)² + … left to right, each square rounded, as the
     * separate ops {@link #weightedSum} (weights 1), {@link #scale}, {@link #sub}, {@link #mul} and
     * {@link #add} compute it. {@code var} must not alias an input; base may be null (xs are τ).
     */
    void deltaVariance(Tile base, List<Tile> xs, Tile var);

    /** {@link #deltaVariance}'s arguments, checked the same on every backend: at least one input, every tile of var's size. */
    static void checkDeltaVariance(Tile base, List<Tile> xs, Tile var) {
        if (xs.isEmpty()) throw new IllegalArgumentException("deltaVariance needs at least one input");
        for (Tile t : xs) if (t.size() != var.size()) throw new IllegalArgumentException("size mismatch: " + t + " vs " + var);
        if (base != null && base.size() != var.size()) throw new IllegalArgumentException("size mismatch: " + base + " vs " + var);
    }

    /**
     * Multislerp's per-element steps in one sweep (docs/methods.md, "multislerp"): with {@code base},
     * x_j = x_j − base in place; then the steps of {@link SphereSteps} up to its level, each float32 op
     * as {@link #sub}, {@link #weightedSum}, {@link #scale} and {@link #add} compute it, so the bits of
     * those ops run one after another. Afterwards the xs hold the last x_j the steps made (task
     * vectors, units or tangents), {@code tangent} (from {@link SphereSteps.Level#TANGENTS} on; it may
     * be xs[0], which then holds T) the weighted sum of the tangents, and {@code mean} the mean (or,
     * at {@link SphereSteps.Level#RESULT}, the merged values). {@code mean} aliases no other tile;
     * checked by {@link SphereLoops#check} on every backend.
     */
    void sphere(Tile base, List<Tile> xs, SphereSteps steps, Tile mean, Tile tangent);

    /**
     * {@link #deltaVariance}'s var straight from stored inputs, for a pass that needs only the variance
     * (docs/methods.md, "sce"; native: one sweep over the stored bytes, no float32 chunk of any input):
     * the bits of {@link #reload} of elements [from, from + var.size()) of each xs_j into scratch_j and of
     * base into a tile b, then deltaVariance(b, scratch, var) (base null: deltaVariance(null, scratch, var)).
     * No NaN/Inf check: a {@link #load} of the same bytes makes it. {@code scratch}: one tile per input
     * of var's size, working memory a backend may use; their values afterwards are unspecified. var
     * aliases no scratch tile.
     */
    void storedVariance(TensorView base, List<TensorView> xs, long from, List<Tile> scratch, Tile var);

    /** {@link #storedVariance}'s arguments, checked the same on every backend, with {@link #load}'s message for a range outside a tensor. */
    static void checkStoredVariance(TensorView base, List<TensorView> xs, long from, List<Tile> scratch, Tile var) {
        if (xs.isEmpty()) throw new IllegalArgumentException("storedVariance needs at least one input");
        if (scratch.size() != xs.size()) throw new IllegalArgumentException("storedVariance needs one scratch tile per input: " + scratch.size() + " for " + xs.size());
        for (Tile t : scratch) {
            if (t.size() != var.size()) throw new IllegalArgumentException("size mismatch: " + t + " vs " + var);
            if (t.data().asOverlappingSlice(var.data()).isPresent()) throw new IllegalArgumentException("storedVariance: var aliases a scratch tile");
        }
        long n = var.size();
        for (TensorView v : base == null ? xs : java.util.stream.Stream.concat(java.util.stream.Stream.of(base), xs.stream()).toList()) {
            if (from < 0 || from + n > v.numel()) throw new IllegalArgumentException("load " + v.name() + " [" + from + ", " + (from + n) + ") of " + v.numel());
        }
    }

    /**
     * SCE's combine of one chunk (docs/methods.md, "sce") in one op, the bits of the separate ops:
     * electSign(taus, sign); W_j = scale(τ_j, w_j); acc = disjointMerge(W, w, sign, false);
     * d = disjointDivisor(W, w, sign); d = clamp(d, floor, +∞); out = add(base, div(acc, d)).
     * {@code taus} and {@code sign} are working memory a backend may use: their values afterwards are
     * unspecified. {@code out} aliases no input.
     */
    void disjointMean(Tile base, List<Tile> taus, float[] w, float floor, Tile sign, Tile out);

    /**
     * {@link #storedVariance} by its definition, op by op on {@code ops} (the Java reference; CUDA's
     * device ops): the inputs reloaded into scratch (base into var), τ_j = x_j − b, then the spread.
     */
    static void storedVarianceByOps(ChunkOps ops, TensorView base, List<TensorView> xs, long from, List<Tile> scratch, Tile var) {
        checkStoredVariance(base, xs, from, scratch, var);
        for (int j = 0; j < xs.size(); j++) ops.reload(xs.get(j), from, scratch.get(j));
        if (base != null) {
            ops.reload(base, from, var);
            // τ_j = x_j − b
            for (Tile t : scratch) ops.sub(t, var, t);
        }
        ops.deltaVariance(null, scratch, var);
    }

    /**
     * {@link #disjointMean} by its definition, op by op on {@code ops} (the Java reference; CUDA's
     * device ops): W_j in place in the task vectors, the divisor in the first.
     */
    static void disjointMeanByOps(ChunkOps ops, Tile base, List<Tile> taus, float[] w, float floor, Tile sign, Tile out) {
        checkDisjointMean(base, taus, w, sign, out);
        // s = sign(Σ τ_j)
        ops.electSign(taus, sign);
        // W_j = w_j τ_j
        for (int j = 0; j < taus.size(); j++) ops.scale(taus.get(j), w[j], taus.get(j));
        // Δ = Σ kept W_j / max(Σ kept w_j, floor)
        ops.disjointMerge(taus, w, sign, false, out);
        Tile d = taus.getFirst();
        ops.disjointDivisor(taus, w, sign, d);
        ops.clamp(d, floor, Float.POSITIVE_INFINITY, d);
        ops.div(out, d, out);
        // θ = θ₀ + Δ
        ops.add(base, out, out);
    }

    /**
     * The TIES combine of one chunk (docs/methods.md, "ties"; ties, dare_ties, breadcrumbs_ties, della)
     * in one op, the bits of the separate ops: W_j = scale(τ_j, w_j); electSign(W, sign);
     * disjointMerge(W, w, sign, normalize, out); with {@code scaled}, out = scale(out, lambda); out =
     * add(base, out). {@code taus} and {@code sign} are working memory a backend may use: their values
     * afterwards are unspecified. {@code out} aliases no input.
     */
    void tiesCombine(Tile base, List<Tile> taus, float[] w, boolean normalize, boolean scaled, float lambda, Tile sign, Tile out);

    /** {@link #tiesCombine} by its definition, op by op on {@code ops} (the Java reference; CUDA's device ops). */
    static void tiesCombineByOps(ChunkOps ops, Tile base, List<Tile> taus, float[] w, boolean normalize, boolean scaled, float lambda,
                                 Tile sign, Tile out) {
        checkDisjointMean(base, taus, w, sign, out);
        // W_j = w_j · τ_j
        for (int j = 0; j < taus.size(); j++) ops.scale(taus.get(j), w[j], taus.get(j));
        // s = sign(Σ_j W_j), 0 → +
        ops.electSign(taus, sign);
        // Δ = Σ_j W_j [sign W_j = s]  (/ Σ_j w_j [sign W_j = s], 0 → 1)
        ops.disjointMerge(taus, w, sign, normalize, out);
        // Δ = λ Δ
        if (scaled) ops.scale(out, lambda, out);
        // θ = θ₀ + Δ
        ops.add(base, out, out);
    }

    /** {@link #disjointMean}'s arguments, checked the same on every backend. */
    static void checkDisjointMean(Tile base, List<Tile> taus, float[] w, Tile sign, Tile out) {
        if (taus.isEmpty() || w.length != taus.size()) throw new IllegalArgumentException("disjointMean needs one weight per task vector: " + w.length + " for " + taus.size());
        for (Tile t : java.util.stream.Stream.concat(taus.stream(), java.util.stream.Stream.of(base, sign)).toList()) {
            if (t.size() != out.size()) throw new IllegalArgumentException("size mismatch: " + t + " vs " + out);
        }
        for (Tile t : java.util.stream.Stream.concat(taus.stream(), java.util.stream.Stream.of(base, sign)).toList()) {
            if (t.data().asOverlappingSlice(out.data()).isPresent()) throw new IllegalArgumentException("disjointMean: out aliases an input");
        }
    }

    /** As {@link Backend#lerp}. */
    void lerp(Tile a, Tile b, float t, Tile out);

    /** As {@link Backend#electSign}. */
    void electSign(List<Tile> weighted, Tile sign);

    /** As {@link Backend#disjointMerge}. */
    void disjointMerge(List<Tile> weighted, float[] w, Tile sign, boolean normalize, Tile out);

    /** As {@link Backend#disjointDivisor}. */
    void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out);

    /**
     * AIM's relaxation of a chunk (docs/aim.md, "The relaxation"; the bits of {@link Backend#relax}
     * on the whole tensor): element i has index {@code offset + i} in the tensor of {@code r.cols()}
     * columns and input channel c as {@link Backend#relax} places it; f = 1 - ((1 - omega) * imp[c]),
     * out = base + ((merged - base) * f), exactly merged where f == 1 and base where f == 0. For
     * {@link Backend.Axis#COLUMNS} and {@link Backend.Axis#ROWS} the chunk holds whole rows
     * ({@code offset} and the size multiples of the columns). {@code out} may alias {@code merged}.
     */
    void relax(Tile base, Tile merged, Combination.Relax r, long offset, Tile out);

    /** out[i] = ref[i] == 0 (either sign) ? +0.0 : x[i]. */
    void keepWhereNonZero(Tile x, Tile ref, Tile out);

    /**
     * Keep bits of elements [from, from + n) of {@code x} (DELLA's keep decisions, carried from a pass
     * to a later one): bit j of {@code bits} (host memory, little-endian 64-bit words, ⌈n/64⌉ of them) is
     * set iff the float bits of x[from + j] are not those of +0.0 (what a drop writes); the unused bits
     * of a last partial word are cleared.
     */
    void nonZeroBits(Tile x, long from, long n, MemorySegment bits);

    /**
     * x[from + j] = +0.0 where bit j of {@code bits} (as {@link #nonZeroBits} writes them) is clear,
     * unchanged where it is set: on the same values, the tile {@code nonZeroBits} read, bit for bit.
     */
    void keepBits(Tile x, long from, long n, MemorySegment bits);

    /** Adds |x[i]| (in double) for the elements at tensor indices [offset, offset + size) to {@code acc}. */
    void sumAbs(Tile x, long offset, BlockSum acc);

    /** Adds x[i]² (each square in double) to {@code acc}, as {@link #sumAbs}. */
    void sumSquares(Tile x, long offset, BlockSum acc);

    /** Adds a[i]·b[i] (each product in double) to {@code acc}, as {@link #sumAbs}. */
    void dot(Tile a, Tile b, long offset, BlockSum acc);

    /**
     * Histogram of the |x| bits (sign cleared, which orders like the magnitude): with
     * {@code high < 0}, hist[bits >>> 16] += 1 (2^15 bins); otherwise, for the elements whose
     * bits >>> 16 equal {@code high}, hist[bits &amp; 0xffff] += 1 (2^16 bins).
     */
    void absHistogram(Tile x, int high, long[] hist);

    /**
     * Keeps the elements of the magnitude rank window {@code w} and sets the others to +0.0, in
     * chunk order: {@code seen} = {equal-to-upper seen so far, equal-to-lower seen so far} in
     * the chunks before this one, advanced by this chunk's counts. Inputs are finite.
     */
    void keepRanks(Tile x, RankWindow w, long[] seen);

    /** As {@link Backend#laneDots}, over lanes lying wholly inside the chunk. */
    void laneDots(Tile a, Tile b, Lanes lanes, double[] out);

    /**
     * Dot products of lanes that run on across chunks (columns of a matrix cut into slabs of rows):
     * the chunk holds elements [first, first + lanes.length()) of each of the lanes.count() lanes,
     * laid out as {@code lanes}; each lane's terms a·b (each product in double) continue acc[v],
     * placed by their index within the lane — over every chunk in order, the bits of the
     * whole-tensor {@link Backend#laneDots}. acc[v].next() must be {@code first}.
     */
    void carriedLaneDots(Tile a, Tile b, Lanes lanes, long first, BlockSum[] acc);

    /** As {@link Backend#laneScale}, over lanes lying wholly inside the chunk. */
    void laneScale(Tile x, float[] s, Lanes lanes, Tile out);

    /**
     * Magnitude rank of every element within its lane, as {@link Backend#laneRanks}: lanes lie
     * wholly inside the chunk. {@code out} must not alias {@code x}.
     */
    void laneRanks(Tile x, Lanes lanes, Tile out);

    /**
     * DELLA's drop: element i (tensor index offset + i) is kept iff
     * {@code Philox.uniform24(key, offset + i) < Philox.threshold24(p[i])} (p[i] widened to double);
     * dropped entries become +0.0. {@code p} must not alias {@code x}.
     */
    void dropByProbability(Tile x, Tile p, long offset, long key);

    /**
     * DELLA's drop of a chunk of whole lanes (docs/methods.md, "della_magprune"): the bits of
     * {@code laneRanks(x, lanes, p); affine(p, slope, top, p); dropByProbability(x, p, offset, key)}
     * with {@code scratch} as p (its values afterwards unspecified; the size of x, aliasing nothing).
     */
    void dellaDrop(Tile x, Lanes lanes, float slope, float top, long offset, long key, Tile scratch);

    /** {@link #dellaDrop} by its definition, op by op on {@code ops} (the Java reference; CUDA's ops). */
    static void dellaDropByOps(ChunkOps ops, Tile x, Lanes lanes, float slope, float top, long offset, long key, Tile scratch) {
        // r = the magnitude rank within the lane
        ops.laneRanks(x, lanes, scratch);
        // p = slope · r + top
        ops.affine(scratch, slope, top, scratch);
        // kept iff u24 < threshold24(p), else +0.0
        ops.dropByProbability(x, scratch, offset, key);
    }

    /**
     * DARE drop: element i (tensor index offset + i) is kept iff
     * {@code Philox.uniform24(key, offset + i) < Philox.threshold24(density)}; dropped entries become +0.0.
     */
    void dropRandom(Tile x, long offset, float density, long key);

    // ---- Arcee Fusion (docs/methods.md, "arcee_fusion"; the reference loops in FusionLoops)

    /**
     * The KL divergence of each of the chunk's whole rows of {@code cols} elements: kl[r] =
     * KL(softmax(other row) + ε ‖ softmax(base row) + ε) in double, with {@link ExpLog} and the
     * canonical sums of {@link FusionLoops#rowKl}, for r &lt; size/cols (the method rounds it to
     * float32; the double shows any difference in the order of the sums).
     */
    void rowKl(Tile base, Tile other, long cols, double[] kl);

    /** imp[i] = |other[i] − base[i]|·kl[i / cols] (float32), the chunk whole rows of {@code cols}. */
    void fusionImportance(Tile base, Tile other, long cols, float[] kl, Tile imp);

    /**
     * Histogram of the order keys of x ({@link FusionLoops#orderKey}: unsigned order is numeric
     * order, −0.0 below +0.0): with {@code high < 0}, hist[key >>> 16] += 1; otherwise, for the
     * elements whose key >>> 16 equals {@code high}, hist[key &amp; 0xffff] += 1. 2^16 bins both.
     */
    void orderHistogram(Tile x, int high, long[] hist);

    /**
     * out[i] = base[i] + (d·m), d = other[i] − base[i], m = 1f where |d|·kl[i / cols] ≥ t, else 0f
     * (float32, as written: a +0.0 product still turns a −0.0 base into +0.0). out may alias an input.
     */
    void fusionCombine(Tile base, Tile other, long cols, float[] kl, float t, Tile out);

    // ---- Karcher mean (docs/methods.md, "karcher"; the reference loops in KarcherLoops)

    /**
     * Karcher's units and first iterate in one sweep, the bits of the separate ops: units[p][i] =
     * scales[p]·xs[p][i] ({@link #scale}); u[i] = ((w0·units0[i]) + (w1·units1[i])) + … left to right,
     * each product rounded ({@link #weightedSum}); then u[i] = f·u[i] ({@link #scale}). units[p] may
     * alias xs[p]; u aliases no input or unit. {@code units} empty: the units are not written (u alone
     * is wanted; the same u).
     */
    void karcherMean(List<Tile> xs, float[] scales, List<Tile> units, float[] w, float f, Tile u);

    /**
     * Karcher's tangent T = Σ c_p·(u_p − cos θ_p·u) in one sweep, the bits of the separate ops: t[i] =
     * +0.0 ({@link #fill}); then for each p in order tmp = (1·units[p][i]) + (minusCos[p]·u[i]) and
     * t[i] = (1·t[i]) + (coef[p]·tmp), every product (the ones included) and sum rounded (two
     * {@link #weightedSum} calls per unit). t aliases no unit and not u; no units: t = +0.0.
     */
    void karcherTangent(List<Tile> units, Tile u, float[] minusCos, float[] coef, Tile t);

    /**
     * {@link #karcherMean} (units not kept) then {@link #karcherTangent} of the units {@code terms[j]}
     * with minusCos[j], coef[j], in one sweep: the units and u stay in registers and only t is
     * written, the bits of the two ops one after the other. t aliases no input.
     */
    void karcherMeanTangent(List<Tile> xs, float[] scales, float[] w, float f, int[] terms, float[] minusCos, float[] coef, Tile t);
}
