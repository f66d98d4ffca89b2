/*
 * mergeops: the native CPU kernels behind mergeforge's "native" backend.
 *
 * This is the one header the Java bindings (dev.mergeforge.bindings.MergeOps) are generated from
 * (`make bindings`). Every function gives the same bits as dev.mergeforge.backend.java.JavaBackend;
 * the semantics are those documented in dev.mergeforge.backend.Backend.
 *
 * Conventions
 *   - Tiles are float32 arrays of n elements; sizes are element counts (int64_t).
 *   - Pointer arrays (const float *const *xs) hold k tile addresses, each of n elements.
 *   - threads: worker threads for this call; 0 or less means one per online CPU. Work is cut at
 *     fixed chunk boundaries, so results never depend on the thread count.
 *   - Functions returning int32_t return MO_OK or a negative MO_ERR_* code.
 *   - The caller guarantees every pointer covers the element counts it passes (the Java side
 *     checks this before each call).
 */
#ifndef MERGEOPS_H
#define MERGEOPS_H

#include <stdint.h>

#define MO_ABI_VERSION 11

#define MO_OK 0
#define MO_ERR_ARG (-1)
#define MO_ERR_NOMEM (-2)

/* Element types of mo_load / mo_store. */
#define MO_DTYPE_F32 0
#define MO_DTYPE_F16 1
#define MO_DTYPE_BF16 2
#define MO_DTYPE_F64 3

/* NaN payload rules for f16 (nan_mode bits). Clear bit: Java's software rule (payload kept, not
   quieted); set bit: the F16C hardware rule (quiet bit set, low payload bits dropped on store). */
#define MO_F16_NAN_QUIET_LOAD 1
#define MO_F16_NAN_QUIET_STORE 2

/* SIMD levels of mo_simd_level / mo_set_simd_level. */
#define MO_SIMD_PORTABLE 0
#define MO_SIMD_AVX2 1
/* AVX2 kernels, and the calibration GEMM's AVX-512 ones (AVX-512F and FMA present). */
#define MO_SIMD_AVX512 2

/* Rescale modes of mo_drop_rescale. */
#define MO_RESCALE_NONE 0
#define MO_RESCALE_DENSITY 1
#define MO_RESCALE_L1 2

/* Maps of mo_map (x, y inputs; s, t scalars). */
#define MO_MAP_DIVIDE 0
#define MO_MAP_MUL 1
#define MO_MAP_DIV 2
#define MO_MAP_ABS 3
#define MO_MAP_CLAMP 4
#define MO_MAP_FILL 5
#define MO_MAP_AFFINE 6
#define MO_MAP_KEEP_NONZERO 7

/* Reductions of mo_block_sums. */
#define MO_REDUCE_SUM_ABS 0
#define MO_REDUCE_SUM_SQUARES 1
#define MO_REDUCE_DOT 2

/* Levels of mo_sphere: the last of multislerp's per-element steps it runs. */
#define MO_SPHERE_MEAN 0
#define MO_SPHERE_UNITS 1
#define MO_SPHERE_TANGENTS 2
#define MO_SPHERE_RESULT 3

/* Input-channel axes of mo_relax. */
#define MO_AXIS_COLUMNS 0
#define MO_AXIS_ROWS 1
#define MO_AXIS_ELEMENTS 2

/* ---------------------------------------------------------------- library */

/* MO_ABI_VERSION of the built library. */
int32_t mo_abi_version(void);

/* The best SIMD level this CPU supports (MO_SIMD_*). */
int32_t mo_simd_detected(void);

/* The SIMD level in use. */
int32_t mo_simd_level(void);

/* Caps the SIMD level (tests compare paths); returns the level now in use. Not thread-safe. */
int32_t mo_set_simd_level(int32_t level);

/* ---------------------------------------------------------------- conversion */

/* dst[i] = float32(src[i]) for src of dtype (MO_DTYPE_*), little-endian. */
int32_t mo_load(int32_t dtype, const void *src, float *dst, int64_t n, int32_t nan_mode, int32_t threads);

/* mo_load, and *nonfinite = 1 when some loaded float32 is NaN or +-inf, else 0: the merger's input
   check rides along with the load (a finite f64 beyond the float range loads as inf and counts). */
int32_t mo_load_checked(int32_t dtype, const void *src, float *dst, int64_t n, int32_t nan_mode, int32_t *nonfinite,
                        int32_t threads);

/* dst[i] = src[i] as dtype, round to nearest even; bf16 NaN -> (bits >> 16) | 0x40. */
int32_t mo_store(int32_t dtype, const float *src, void *dst, int64_t n, int32_t nan_mode, int32_t threads);

/* The lowest index i < n whose element (dtype MO_DTYPE_*) is NaN or +-inf; n when there is none. */
int64_t mo_first_nonfinite(int32_t dtype, const void *src, int64_t n, int32_t threads);

/* ---------------------------------------------------------------- elementwise */

/* out[i] = a[i] - b[i] */
void mo_sub(const float *a, const float *b, float *out, int64_t n, int32_t threads);

/* out[i] = a[i] + b[i] */
void mo_add(const float *a, const float *b, float *out, int64_t n, int32_t threads);

/* out[i] = s * x[i] */
void mo_scale(const float *x, float s, float *out, int64_t n, int32_t threads);

/* y[i] = y[i] + (alpha * x[i]) */
void mo_axpy(float alpha, const float *x, float *y, int64_t n, int32_t threads);

/* out[i] = ((w[0]*xs[0][i]) + (w[1]*xs[1][i])) + ... left to right; k >= 1. */
int32_t mo_weighted_sum(const float *const *xs, const float *w, int32_t k, float *out, int64_t n, int32_t threads);

/* SCE's spread (docs/methods.md, "sce"): with base, xs[j][i] = xs[j][i] - base[i] in place (tau_j);
   mean = (1/k) * (tau_0 + tau_1 + ...) left to right; var[i] = (tau_0 - mean)^2 + (tau_1 - mean)^2 + ...
   left to right, each square rounded. base may be NULL (xs are tau already); k >= 1; var aliases no input. */
int32_t mo_delta_variance(float *const *xs, const float *base, int32_t k, float *var, int64_t n, int32_t threads);

/* Multislerp's per-element steps in one sweep (docs/methods.md, "multislerp"; SphereSteps), each op
   rounded as the separate ops round it. p holds mw[k], us[k], d[k], w[k], then ms, c, so, g:
     x_j  = x_j - base[i]                              (in place; only when base != NULL)
     m    = (mw[0]*x_0) + (mw[1]*x_1) + ... left to right                       (level MEAN)
     m    = ms*m; x_j = us[j]*x_j                                              (level UNITS)
     x_j  = (1*x_j) + ((-d[j])*m); T = (w[0]*x_0) + (w[1]*x_1) + ...           (level TANGENTS)
     r    = c*m; r = (1*r) + (so*T); r = g*r; r = base[i] + r (with a base); m = r  (level RESULT)
   The xs keep the last x_j, tangent[i] = T (from TANGENTS on; tangent may be xs[0], which then
   holds T; NULL below TANGENTS), mean[i] = m. mean aliases nothing; k >= 1. */
int32_t mo_sphere(float *const *xs, const float *base, int32_t k, int32_t level, const float *p, float *mean, float *tangent,
                  int64_t n, int32_t threads);

/* mo_delta_variance's var straight from stored inputs, without their float32 tiles (SCE's passes that
   need only the variance): with x_j = float32(xs[j][i]) and b = float32(base[i]) (as mo_load converts
   them; dtypes[j] and base_dtype are MO_DTYPE_*), tau_j = x_j - b when base != NULL, else x_j; then mean
   and var exactly as mo_delta_variance computes them. k >= 1; var overlaps no input. */
int32_t mo_stored_variance(const void *const *xs, const int32_t *dtypes, int32_t k, const void *base, int32_t base_dtype,
                           float *var, int64_t n, int32_t nan_mode, int32_t threads);

/* SCE's combine of task vectors (docs/methods.md, "sce"), the bits of the separate ops in one sweep:
   sign = (taus[0][i] + taus[1][i] + ...) left to right >= 0 ? +1 : -1 (mo_elect_sign); W_j = w[j] * taus[j][i];
   acc and div as mo_disjoint_merge keeps them (W_j kept iff its sign equals sign; acc = sum of kept W_j,
   div = sum of kept w[j], left to right from 0); d = div < floor ? floor : div (clamp to [floor, +inf]);
   out[i] = base[i] + (acc / d). k >= 1; out overlaps no input. */
int32_t mo_disjoint_mean(const float *const *taus, const float *w, int32_t k, const float *base, float floor,
                         float *out, int64_t n, int32_t threads);

/* The TIES combine of sparsified task vectors (docs/methods.md, "ties"), the bits of the separate ops in
   one sweep: W_j = w[j] * taus[j][i]; sign = (W_0 + W_1 + ...) left to right >= 0 ? +1 : -1
   (mo_elect_sign of the W); acc and div as mo_disjoint_merge keeps them; normalize != 0: acc = acc /
   (div == 0 ? 1 : div); scaled != 0: acc = lambda * acc; out[i] = base[i] + acc. k >= 1; out overlaps
   no input. */
int32_t mo_ties_combine(const float *const *taus, const float *w, int32_t k, const float *base, int32_t normalize, int32_t scaled,
                        float lambda, float *out, int64_t n, int32_t threads);

/* ---------------------------------------------------------------- Karcher mean (docs/methods.md, "karcher") */
/* units[p][i] = scales[p]*xs[p][i]; u[i] = f * (((w[0]*units[0][i]) + (w[1]*units[1][i])) + ...) left to
   right, each product rounded: the bits of scale, weighted sum, scale. units[p] may alias xs[p]; u
   aliases no input; units NULL: not written; k >= 1. */
int32_t mo_karcher_mean(const float *const *xs, const float *scales, float *const *units, const float *w, int32_t k,
                        float f, float *u, int64_t n, int32_t threads);

/* t[i] = +0.0; then per p < k in order tmp = (1*units[p][i]) + (minus_cos[p]*u[i]) and
   t[i] = (1*t[i]) + (coef[p]*tmp), every product (the ones too) and sum rounded: the bits of fill and
   two weighted sums per unit. t aliases no unit and not u; k >= 0. */
int32_t mo_karcher_tangent(const float *const *units, const float *u, const float *minus_cos, const float *coef, int32_t k,
                           float *t, int64_t n, int32_t threads);

/* mo_karcher_mean (units not kept) then mo_karcher_tangent of the units terms[j] (0 <= terms[j] < k) with
   minus_cos[j], coef[j], per element in one sweep: only t is written, the bits of the two one after the
   other. t aliases no input; k >= 1, nterms >= 0. */
int32_t mo_karcher_mean_tangent(const float *const *xs, const float *scales, const float *w, int32_t k, float f, const int32_t *terms,
                                const float *minus_cos, const float *coef, int32_t nterms, float *t, int64_t n, int32_t threads);

/* out[i] = ((1-t)*a[i]) + (t*b[i]) */
void mo_lerp(const float *a, const float *b, float t, float *out, int64_t n, int32_t threads);

/* ---------------------------------------------------------------- fused combination of stored tensors */

/* The linear / task-arithmetic program in one pass over stored bytes, the same bits as running
   mo_load, mo_sub, mo_weighted_sum, mo_scale, mo_add, mo_relax and mo_store on float32 tiles:
     b    = float32(base[i])                     (only when base != NULL)
     t_j  = float32(srcs[j][i]) (- b)            (the subtraction only when task_vectors)
     acc  = w[0]*t_0, then acc = acc + (w[j]*t_j) for j = 1..k-1
     acc  = scales[q] * acc for q = 0..nscales-1
     acc  = b + acc                              (only when task_vectors)
     acc  = relax(b, acc) as mo_relax does, for element offset + i  (only when imp != NULL)
     dst[i] = acc as out_dtype
   dtypes[j], base_dtype and out_dtype are MO_DTYPE_*; k >= 1; dst must not overlap any source;
   base is required by task_vectors and by the relaxation. offset: the index of element 0 within
   the whole tensor (calls may cover a piece of it), which picks each element's input channel.
   *nonfinite is set to 1 when any input element, as float32, is NaN or +-inf (the merger's input
   check rides along with the one pass over the inputs), else to 0. */
int32_t mo_combine_stored(const void *const *srcs, const int32_t *dtypes, int32_t k, const float *w,
                          const void *base, int32_t base_dtype, int32_t task_vectors, const float *scales, int32_t nscales,
                          const float *imp, int64_t channels, float omega, int32_t axis, int64_t cols, int64_t offset,
                          void *dst, int32_t out_dtype, int64_t n, int32_t nan_mode, int32_t *nonfinite,
                          int32_t threads);

/* ---------------------------------------------------------------- reductions (canonical order, double) */

/* sum |x[i]| */
double mo_sum_abs(const float *x, int64_t n, int32_t threads);

/* sum x[i]^2 */
double mo_sum_squares(const float *x, int64_t n, int32_t threads);

/* sum a[i]*b[i] */
double mo_dot(const float *a, const float *b, int64_t n, int32_t threads);

/* ---------------------------------------------------------------- sparsification */

/* Keeps magnitude ranks [from, to) (ties: lower index first), zeroes the rest. */
int32_t mo_keep_rank_range(float *x, int64_t n, int64_t from, int64_t to, int32_t threads);

/* DARE drop with Philox-4x32-10 under key, then rescale by mode (MO_RESCALE_*). */
int32_t mo_drop_rescale(float *x, int64_t n, float density, int64_t key, int32_t mode, int32_t threads);

/* ---------------------------------------------------------------- TIES */

/* sign[i] = (xs[0][i] + xs[1][i] + ...) >= 0 ? +1 : -1; k >= 1. */
int32_t mo_elect_sign(const float *const *xs, int32_t k, float *sign, int64_t n, int32_t threads);

/* Sums the entries agreeing with sign[i] (and their weights w); normalize != 0 divides by them. */
int32_t mo_disjoint_merge(const float *const *xs, const float *w, int32_t k, const float *sign,
                          int32_t normalize, float *out, int64_t n, int32_t threads);

/* ---------------------------------------------------------------- AIM */

/* out[i] = base[i] + ((merged[i] - base[i]) * (1 - ((1 - omega) * imp[c(i)]))), c by axis. */
int32_t mo_relax(const float *base, const float *merged, const float *imp, int64_t channels, float omega,
                 int32_t axis, int64_t cols, float *out, int64_t n, int32_t threads);

/* ---------------------------------------------------------------- chunk ops (dev.mergeforge.backend.ChunkOps) */

/* out[i] = f(x[i], y[i]) for op (MO_MAP_*), each a float32 operation as written:
     DIVIDE x / s, MUL x * y, DIV x / y, ABS |x| (sign bit cleared), CLAMP x < s ? s : (x > t ? t : x)
     (NaN kept; needs s <= t), FILL s, AFFINE (s * x) + t, KEEP_NONZERO y == 0 ? +0 : x.
   y is read only by MUL, DIV and KEEP_NONZERO, x by all but FILL (either may be NULL otherwise). */
int32_t mo_map(int32_t op, const float *x, const float *y, float s, float t, float *out, int64_t n, int32_t threads);

/* The canonical reduction (kind MO_REDUCE_*: |a|, a^2 or a*b in double; docs/methods.md, "The
   canonical reduction order") of a chunk whose element 0 is element `offset` of the tensor, cut into
   runs at the tensor's block edges (multiples of 4096): 1 + ceil((n - first) / 4096) runs (none when
   n == 0), `first` = the elements up to the first edge (or n). Term i goes to stripe (offset + i) % 64
   of its block. open[0..63] holds, on entry, the stripe sums of the block the chunk starts in (zeros
   when offset is a block edge), which the first run continues; on return, the stripe sums of the block
   the last run leaves open (zeros when the chunk ends at a block edge). partial[r] = the block sum
   (the pairwise tree of its 64 stripes) of each run r that ends at a block edge; partial[r] of a run
   left open is not written. b is read only by DOT. */
int32_t mo_block_sums(int32_t kind, const float *a, const float *b, int64_t n, int64_t offset, double *open, double *partial,
                      int32_t threads);

/* hist += the histogram of the |x| bits: high < 0: hist[bits >> 16] (2^15 bins); else, for the
   elements whose bits >> 16 == high (< 2^15), hist[bits & 0xffff] (2^16 bins). */
int32_t mo_abs_histogram(const float *x, int64_t n, int32_t high, int64_t *hist, int32_t threads);

/* The magnitude rank window (dev.mergeforge.backend.RankWindow, neither none nor all) in chunk order:
   with a the |x| bits, x[i] is kept iff lower <= a <= upper, except the first skip_upper equal to upper
   (when has_upper) and all but the first keep_lower equal to lower, counted across chunks; the others
   become +0. seen = {equal to upper, equal to lower} before this chunk, advanced by its counts. */
int32_t mo_keep_ranks(float *x, int64_t n, int32_t has_upper, int32_t upper, int64_t skip_upper, int32_t lower,
                      int64_t keep_lower, int64_t *seen, int32_t threads);

/* out[i] = the sum in model order of w[j] over the inputs j whose sign (0 for +-0 and NaN) equals sign[i]. */
int32_t mo_disjoint_divisor(const float *const *xs, const float *w, int32_t k, const float *sign, float *out, int64_t n,
                            int32_t threads);

/* Lanes of a tensor seen as [outer, length, inner]: lane v = o*inner + j holds the elements
   (o*length + k)*inner + j, k < length. out[v] = sum a*b along lane v in the canonical order over
   k (blocks of 4096, each in 64 stripes of k % 64 combined by the pairwise tree, then the block sums
   left to right). */
int32_t mo_lane_dots(const float *a, const float *b, int64_t outer, int64_t length, int64_t inner, double *out, int32_t threads);

/* out[i] = s[lane of i] * x[i]. */
int32_t mo_lane_scale(const float *x, const float *s, int64_t outer, int64_t length, int64_t inner, float *out, int32_t threads);

/* out[i] = the rank of x[i] within its lane by descending |x| bits, ties by lower position first;
   length <= 2^24; out must not overlap x. */
int32_t mo_lane_ranks(const float *x, int64_t outer, int64_t length, int64_t inner, float *out, int32_t threads);

/* DARE drop at tensor indices: x[i] becomes +0 unless the Philox draw of element offset + i under key
   has its top 24 bits below ceil(density * 2^24) (as mo_drop_rescale, without a rescale). */
int32_t mo_drop_at(float *x, int64_t n, int64_t offset, float density, int64_t key, int32_t threads);

/* mo_drop_at with a keep probability per element: the threshold of x[i] is ceil(p[i] * 2^24) clamped
   to [0, 2^24] (0 for NaN). p must not overlap x. */
int32_t mo_drop_by_probability(float *x, const float *p, int64_t n, int64_t offset, int64_t key, int32_t threads);

/* DELLA's drop over rows x[r * len .. (r + 1) * len) (len <= 2^20): element k of row r, of magnitude rank
   q within its row (mo_lane_ranks' order), becomes +0 unless the Philox draw of element offset + r * len + k
   under key has its top 24 bits below threshold24(p), p = (float)(slope * (float)q) + top in float32 —
   the bits of mo_lane_ranks, that affine step and mo_drop_by_probability; most elements are decided
   without their rank. */
int32_t mo_della_drop(float *x, int64_t rows, int64_t len, float slope, float top, int64_t offset, int64_t key, int32_t threads);

/* Keep bits (little-endian 64-bit words, bit i for element i; ceil(n / 64) words): bit i set iff the
   float bits of x[i] are not those of +0.0 (a drop's result). */
int32_t mo_nonzero_bits(const float *x, int64_t n, uint64_t *bits, int32_t threads);

/* x[i] = +0.0 where bit i of bits (as mo_nonzero_bits writes them) is clear; x[i] unchanged where set. */
int32_t mo_keep_bits(float *x, int64_t n, const uint64_t *bits, int32_t threads);

/* ---------------------------------------------------------------- Arcee Fusion (fusion.c) */

/* kl[r] = KL(p || q) of row r < rows of cols elements at b + r*cols (theta_0) and o + r*cols (theta_1):
   p = softmax(o row) + 1e-8, q = softmax(b row) + 1e-8 (exp times the reciprocal of the row's sum), in double with the exp and log of explog.h
   (dev.mergeforge.backend.ExpLog), each sum in the canonical order of the reductions over positions
   within the row, in double (NaN for a row holding a NaN or +inf): dev.mergeforge.backend.FusionLoops. */
int32_t mo_row_kl(const float *b, const float *o, int64_t rows, int64_t cols, double *kl, int32_t threads);

/* imp[i] = |o[i] - b[i]| * kl[i / cols] (float32), n a multiple of cols. */
int32_t mo_fusion_importance(const float *b, const float *o, int64_t n, int64_t cols, const float *kl, float *imp, int32_t threads);

/* hist += the histogram of the order keys k of x (float bits mapped so unsigned order is numeric order,
   -0.0 below +0.0): high < 0: hist[k >> 16]; else, for the elements with k >> 16 == high (< 2^16),
   hist[k & 0xffff]. 2^16 bins both. */
int32_t mo_order_histogram(const float *x, int64_t n, int32_t high, int64_t *hist, int32_t threads);

/* out[i] = b[i] + d * (|d| * kl[i / cols] >= t ? 1 : 0), d = o[i] - b[i] (float32; out may alias b or o). */
int32_t mo_fusion_combine(const float *b, const float *o, int64_t n, int64_t cols, const float *kl, float t, float *out, int32_t threads);

/* ---------------------------------------------------------------- calibration forward pass (gemm.c) */

/* y[t*ldy + o] = sum_i x[t*ldx + i] * w[o*ldw + i] (+ bias[o]) for t < tokens, o < out: nn.Linear's
   product for the calibration forward pass (ldx >= in, ldw >= in, ldy >= out; bias may be NULL).
   Not part of the Backend contract. Each y element is one fused multiply-add chain over i in
   ascending order from +0, then + bias[o]: the same bits on the AVX-512, AVX2+FMA and portable paths and
   for any thread count; equal to the Java MatMul (unfused) to rounding only. */
int32_t mo_sgemm_nt(const float *x, int64_t tokens, int64_t in, int64_t ldx, const float *w, int64_t out, int64_t ldw,
                    const float *bias, float *y, int64_t ldy, int32_t threads);

/* out[t*ldo + h*d + i] = sum_j p[t, j] * v[j*ldkv + (h/g)*d + i], p = softmax over the keys j the
   query at position pos = pos0 + t sees (j <= pos, and pos - j < window when window > 0) of
   cap*tanh(s/cap) (cap > 0) or s, s = (q[t*ldq + h*d ..] . k[j*ldkv + (h/g)*d ..]) * scale: causal
   attention of one layer, g = heads / kv_heads query heads per kv head, head_dim d, keys and values
   cached for positions [0, pos0 + tokens). Tiles of MO_ATTENTION_TILE queries per head run on the
   worker pool; each score and each output is one fused chain in ascending order as in mo_sgemm_nt
   (masked keys enter the value chain as exact zeros), the softmax's exp is a fixed polynomial and
   its sum a fixed 8-lane order: the same bits on every path and thread count (attention.c). */
#define MO_ATTENTION_TILE 64
int32_t mo_attention(const float *q, int64_t tokens, int64_t ldq, const float *k, const float *v, int64_t ldkv, int64_t pos0,
                     int32_t heads, int32_t kv_heads, int64_t head_dim, int64_t window, float scale, float cap, float *out,
                     int64_t ldo, int32_t threads);

/* Runs iters rounds of 12 independent FMA chains of 8 lanes (16 at the AVX-512 level) on each of
   `threads` workers (0: one per CPU) and returns the floating-point operations done (2 per lane per
   FMA; 192 or 384 per round and worker), or a negative MO_ERR_* code: the peak the caller times
   against its products. */
int64_t mo_fma_peak(int64_t iters, int32_t threads);

#endif
