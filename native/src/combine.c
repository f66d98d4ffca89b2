/*
 * Ops over k inputs (weighted sum, TIES sign election and disjoint merge) and AIM relaxation.
 * Each element's terms are combined in model order exactly as JavaBackend does; the work goes
 * through a small stack buffer per sub-block so the output may alias any input. The loop bodies
 * are compiled twice (baseline ISA and AVX2) from the same inline kernels: same operations, same bits.
 */
#include <immintrin.h>
#include "mo_internal.h"

#define SUB 1024
#define INLINE static inline __attribute__((always_inline))

typedef struct {
    const float *const *xs;
    const float *w;
    int32_t k;
    const float *sign;
    int32_t normalize;
    float *out;
} multi_t;

INLINE void weighted_sum_kernel(const multi_t *c, int64_t lo, int64_t hi) {
    float acc[SUB];
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        const float *x0 = c->xs[0] + s;
        float w0 = c->w[0];
        // acc = w0 * x0
        for (int64_t i = 0; i < m; i++) acc[i] = w0 * x0[i];
        for (int32_t j = 1; j < c->k; j++) {
            const float *xj = c->xs[j] + s;
            float wj = c->w[j];
            // acc = acc + (wj * xj)
            for (int64_t i = 0; i < m; i++) {
                float p = wj * xj[i];
                acc[i] = acc[i] + p;
            }
        }
        for (int64_t i = 0; i < m; i++) c->out[s + i] = acc[i];
    }
}

INLINE void elect_sign_kernel(const multi_t *c, int64_t lo, int64_t hi) {
    float acc[SUB];
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        const float *x0 = c->xs[0] + s;
        for (int64_t i = 0; i < m; i++) acc[i] = x0[i];
        // s = x0 + x1 + ... left to right
        for (int32_t j = 1; j < c->k; j++) {
            const float *xj = c->xs[j] + s;
            for (int64_t i = 0; i < m; i++) acc[i] = acc[i] + xj[i];
        }
        // sign = s >= 0 ? +1 : -1
        for (int64_t i = 0; i < m; i++) c->out[s + i] = acc[i] >= 0.0f ? 1.0f : -1.0f;
    }
}

INLINE void disjoint_kernel(const multi_t *c, int64_t lo, int64_t hi) {
    float acc[SUB], div[SUB];
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        const float *sg = c->sign + s;
        for (int64_t i = 0; i < m; i++) { acc[i] = 0.0f; div[i] = 0.0f; }
        for (int32_t j = 0; j < c->k; j++) {
            const float *xj = c->xs[j] + s;
            float wj = c->w[j];
            // keep W = xj iff sign(W) == sign; acc += W, div += wj over the kept
            for (int64_t i = 0; i < m; i++) {
                float v = xj[i];
                float sv = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
                int keep = sv == sg[i];
                float a = acc[i] + v, d = div[i] + wj;
                acc[i] = keep ? a : acc[i];
                div[i] = keep ? d : div[i];
            }
        }
        if (c->normalize) {
            // out = acc / (div == 0 ? 1 : div)
            for (int64_t i = 0; i < m; i++) c->out[s + i] = acc[i] / (div[i] == 0.0f ? 1.0f : div[i]);
        } else {
            for (int64_t i = 0; i < m; i++) c->out[s + i] = acc[i];
        }
    }
}

static void weighted_sum_portable(const multi_t *c, int64_t lo, int64_t hi) { weighted_sum_kernel(c, lo, hi); }
MO_AVX2 static void weighted_sum_avx2(const multi_t *c, int64_t lo, int64_t hi) { weighted_sum_kernel(c, lo, hi); }
static void elect_sign_portable(const multi_t *c, int64_t lo, int64_t hi) { elect_sign_kernel(c, lo, hi); }
MO_AVX2 static void elect_sign_avx2(const multi_t *c, int64_t lo, int64_t hi) { elect_sign_kernel(c, lo, hi); }
static void disjoint_portable(const multi_t *c, int64_t lo, int64_t hi) { disjoint_kernel(c, lo, hi); }

/* The same selection with explicit masks: sign(v) as (v > 0 & 1) | (v < 0 & -1), kept lanes blended in. */
MO_AVX2 static void disjoint_avx2(const multi_t *c, int64_t lo, int64_t hi) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), minus = _mm256_set1_ps(-1.0f);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 s = _mm256_loadu_ps(c->sign + i), acc = zero, div = zero;
        for (int32_t j = 0; j < c->k; j++) {
            __m256 v = _mm256_loadu_ps(c->xs[j] + i);
            __m256 sv = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), one),
                                     _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), minus));
            __m256 keep = _mm256_cmp_ps(sv, s, _CMP_EQ_OQ);
            // acc += W, div += w_j where kept
            acc = _mm256_blendv_ps(acc, _mm256_add_ps(acc, v), keep);
            div = _mm256_blendv_ps(div, _mm256_add_ps(div, _mm256_set1_ps(c->w[j])), keep);
        }
        if (c->normalize) {
            // acc / (div == 0 ? 1 : div)
            acc = _mm256_div_ps(acc, _mm256_blendv_ps(div, one, _mm256_cmp_ps(div, zero, _CMP_EQ_OQ)));
        }
        _mm256_storeu_ps(c->out + i, acc);
    }
    disjoint_kernel(c, i, hi);
}

static void weighted_sum_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) weighted_sum_avx2(c, lo, hi); else weighted_sum_portable(c, lo, hi);
}
static void elect_sign_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) elect_sign_avx2(c, lo, hi); else elect_sign_portable(c, lo, hi);
}
static void disjoint_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) disjoint_avx2(c, lo, hi); else disjoint_portable(c, lo, hi);
}

int32_t mo_weighted_sum(const float *const *xs, const float *w, int32_t k, float *out, int64_t n, int32_t threads) {
    if (k < 1 || !xs || !w) return MO_ERR_ARG;
    multi_t c = { .xs = xs, .w = w, .k = k, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, weighted_sum_task, &c);
    return MO_OK;
}

int32_t mo_elect_sign(const float *const *xs, int32_t k, float *sign, int64_t n, int32_t threads) {
    if (k < 1 || !xs) return MO_ERR_ARG;
    multi_t c = { .xs = xs, .k = k, .out = sign };
    mo_parallel_for(n, MO_CHUNK, threads, elect_sign_task, &c);
    return MO_OK;
}

int32_t mo_disjoint_merge(const float *const *xs, const float *w, int32_t k, const float *sign,
                          int32_t normalize, float *out, int64_t n, int32_t threads) {
    if (k < 0 || (k > 0 && (!xs || !w))) return MO_ERR_ARG;
    multi_t c = { .xs = xs, .w = w, .k = k, .sign = sign, .normalize = normalize, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, disjoint_task, &c);
    return MO_OK;
}

/* ---------------------------------------------------------------- SCE's spread */

typedef struct {
    float *const *xs;
    const float *base;
    int32_t k;
    float *var;
} spread_t;

/* tau_j = x_j - base (stored back) when base is given; mean = (1/k) * (tau_0 + tau_1 + ...);
   var = (tau_0 - mean)^2 + (tau_1 - mean)^2 + ... left to right, each square rounded. */
INLINE void delta_variance_kernel(const spread_t *c, int64_t lo, int64_t hi) {
    float sum[SUB], mean[SUB], acc[SUB];
    const float inv = 1.0f / (float)c->k;
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        for (int32_t j = 0; j < c->k; j++) {
            float *xj = c->xs[j] + s;
            if (c->base) {
                const float *b = c->base + s;
                for (int64_t i = 0; i < m; i++) xj[i] = xj[i] - b[i];
            }
            if (j == 0) for (int64_t i = 0; i < m; i++) sum[i] = xj[i];
            else for (int64_t i = 0; i < m; i++) sum[i] = sum[i] + xj[i];
        }
        for (int64_t i = 0; i < m; i++) mean[i] = inv * sum[i];
        const float *x0 = c->xs[0] + s;
        for (int64_t i = 0; i < m; i++) { float d = x0[i] - mean[i]; acc[i] = d * d; }
        for (int32_t j = 1; j < c->k; j++) {
            const float *xj = c->xs[j] + s;
            for (int64_t i = 0; i < m; i++) { float d = xj[i] - mean[i]; float q = d * d; acc[i] = acc[i] + q; }
        }
        for (int64_t i = 0; i < m; i++) c->var[s + i] = acc[i];
    }
}

static void delta_variance_portable(const spread_t *c, int64_t lo, int64_t hi) { delta_variance_kernel(c, lo, hi); }
MO_AVX2 static void delta_variance_avx2(const spread_t *c, int64_t lo, int64_t hi) { delta_variance_kernel(c, lo, hi); }
static void delta_variance_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) delta_variance_avx2(c, lo, hi); else delta_variance_portable(c, lo, hi);
}

int32_t mo_delta_variance(float *const *xs, const float *base, int32_t k, float *var, int64_t n, int32_t threads) {
    if (k < 1 || !xs || !var) return MO_ERR_ARG;
    spread_t c = { .xs = xs, .base = base, .k = k, .var = var };
    mo_parallel_for(n, MO_CHUNK, threads, delta_variance_task, &c);
    return MO_OK;
}

/* ---------------------------------------------------------------- AIM relax */

typedef struct {
    const float *base, *merged, *imp;
    float keep;
    int32_t axis;
    int64_t cols;
    float *out;
} relax_t;

/* Per-element channel factor: f = 1 - (keep * imp[k]); out = m if f == 1, b if f == 0, else b + ((m - b) * f). */
INLINE void relax_vec_kernel(const float *b, const float *m, const float *imp, float keep, float *o, int64_t len) {
    for (int64_t k = 0; k < len; k++) {
        float f = 1.0f - (keep * imp[k]);
        float bi = b[k], mi = m[k];
        float d = mi - bi;
        o[k] = f == 1.0f ? mi : (f == 0.0f ? bi : bi + (d * f));
    }
}

/* One channel factor for the whole run (ROWS axis). */
INLINE void relax_const_kernel(const float *b, const float *m, float f, float *o, int64_t len) {
    for (int64_t k = 0; k < len; k++) {
        float bi = b[k], mi = m[k];
        float d = mi - bi;
        o[k] = f == 1.0f ? mi : (f == 0.0f ? bi : bi + (d * f));
    }
}

static void relax_vec_portable(const float *b, const float *m, const float *imp, float keep, float *o, int64_t len) {
    relax_vec_kernel(b, m, imp, keep, o, len);
}
MO_AVX2 static void relax_vec_avx2(const float *b, const float *m, const float *imp, float keep, float *o, int64_t len) {
    relax_vec_kernel(b, m, imp, keep, o, len);
}
static void relax_const_portable(const float *b, const float *m, float f, float *o, int64_t len) {
    relax_const_kernel(b, m, f, o, len);
}
MO_AVX2 static void relax_const_avx2(const float *b, const float *m, float f, float *o, int64_t len) {
    relax_const_kernel(b, m, f, o, len);
}

static void relax_task(void *ctx, int w, int64_t lo, int64_t hi) {
    relax_t *r = ctx; (void)w;
    int avx2 = mo_use_avx2();
    int64_t i = lo;
    while (i < hi) {
        int64_t run, c;
        switch (r->axis) {
            case MO_AXIS_COLUMNS: c = i % r->cols; run = r->cols - c; break;   // c = i mod cols
            case MO_AXIS_ROWS: c = i / r->cols; run = r->cols - i % r->cols; break; // c = i / cols
            default: c = i; run = hi - i; break;                                 // c = i
        }
        if (run > hi - i) run = hi - i;
        const float *b = r->base + i, *m = r->merged + i;
        float *o = r->out + i;
        if (r->axis == MO_AXIS_ROWS) {
            float f = 1.0f - (r->keep * r->imp[c]);
            if (avx2) relax_const_avx2(b, m, f, o, run); else relax_const_portable(b, m, f, o, run);
        } else {
            if (avx2) relax_vec_avx2(b, m, r->imp + c, r->keep, o, run); else relax_vec_portable(b, m, r->imp + c, r->keep, o, run);
        }
        i += run;
    }
}

int32_t mo_relax(const float *base, const float *merged, const float *imp, int64_t channels, float omega,
                 int32_t axis, int64_t cols, float *out, int64_t n, int32_t threads) {
    if (n <= 0) return MO_OK;
    int64_t expect;
    switch (axis) {
        case MO_AXIS_COLUMNS: expect = cols; break;
        case MO_AXIS_ROWS: expect = cols > 0 ? n / cols : 0; break;
        case MO_AXIS_ELEMENTS: expect = n; break;
        default: return MO_ERR_ARG;
    }
    if (cols <= 0 || n % cols != 0 || channels != expect) return MO_ERR_ARG;
    // keep = 1 - omega in float32
    relax_t r = { .base = base, .merged = merged, .imp = imp, .keep = 1.0f - omega, .axis = axis, .cols = cols, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, relax_task, &r);
    return MO_OK;
}

/* ---------------------------------------------------------------- the disjoint combines (SCE's, TIES') */

/* How a disjoint combine elects and divides: SCE elects on the sum of the tau_j and divides by the
   kept weights clamped to floor; TIES elects on the sum of the W_j = w_j * tau_j, divides by the kept
   weights (0 -> 1) when it normalises, then scales by lambda. */
enum { DIVIDE_NONE, DIVIDE_FLOOR, DIVIDE_NONZERO };

typedef struct {
    const float *const *taus;
    const float *w;
    int32_t k;
    const float *base;
    int32_t elect_weighted;
    int32_t divide;
    float floor;
    int32_t scaled;
    float lambda;
    float *out;
} combine_t;

/* mo_elect_sign (of the tau_j, or of the W_j), the scale by w_j, mo_disjoint_merge's and
   mo_disjoint_divisor's sums, the division, lambda and the base added, per sub-block in L1: each step
   the float32 operation its own op makes. */
INLINE void disjoint_combine_kernel(const combine_t *c, int64_t lo, int64_t hi) {
    float sign[SUB], acc[SUB], div[SUB];
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        // sign = x_0 + x_1 + ... >= 0 ? +1 : -1, x_j = tau_j or W_j
        for (int32_t j = 0; j < c->k; j++) {
            const float *tj = c->taus[j] + s;
            float wj = c->w[j];
            for (int64_t i = 0; i < m; i++) {
                float x = c->elect_weighted ? wj * tj[i] : tj[i];
                sign[i] = j == 0 ? x : sign[i] + x;
            }
        }
        for (int64_t i = 0; i < m; i++) { sign[i] = sign[i] >= 0.0f ? 1.0f : -1.0f; acc[i] = 0.0f; div[i] = 0.0f; }
        for (int32_t j = 0; j < c->k; j++) {
            const float *tj = c->taus[j] + s;
            float wj = c->w[j];
            // W = w_j * tau_j kept iff sign(W) == sign: acc += W, div += w_j
            for (int64_t i = 0; i < m; i++) {
                float v = wj * tj[i];
                float sv = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
                int keep = sv == sign[i];
                float a = acc[i] + v, d = div[i] + wj;
                acc[i] = keep ? a : acc[i];
                div[i] = keep ? d : div[i];
            }
        }
        const float *b = c->base + s;
        float *o = c->out + s;
        for (int64_t i = 0; i < m; i++) {
            float a = acc[i];
            // DIVIDE_FLOOR: d = clamp(div, floor, +inf) (NaN is kept); DIVIDE_NONZERO: d = div == 0 ? 1 : div
            if (c->divide == DIVIDE_FLOOR) a = a / (div[i] < c->floor ? c->floor : div[i]);
            else if (c->divide == DIVIDE_NONZERO) a = a / (div[i] == 0.0f ? 1.0f : div[i]);
            if (c->scaled) a = c->lambda * a;
            o[i] = b[i] + a;
        }
    }
}

static void disjoint_combine_portable(const combine_t *c, int64_t lo, int64_t hi) { disjoint_combine_kernel(c, lo, hi); }

/* The same steps with explicit masks (as disjoint_avx2: the compiler leaves the kept-or-not choices as
   branches, which a random sign pattern mispredicts), 8 elements at a time; the tail as above. */
MO_AVX2 INLINE void disjoint_combine_avx2_body(const combine_t *c, int64_t lo, int64_t hi, int32_t elect_weighted, int32_t divide,
                                               int32_t scaled) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), minus = _mm256_set1_ps(-1.0f);
    const __m256 floor = _mm256_set1_ps(c->floor), lambda = _mm256_set1_ps(c->lambda);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        // sign = x_0 + x_1 + ... >= 0 ? +1 : -1 (NaN: -1), x_j = tau_j or W_j
        __m256 s = zero;
        for (int32_t j = 0; j < c->k; j++) {
            __m256 x = _mm256_loadu_ps(c->taus[j] + i);
            if (elect_weighted) x = _mm256_mul_ps(_mm256_set1_ps(c->w[j]), x);
            s = j == 0 ? x : _mm256_add_ps(s, x);
        }
        s = _mm256_blendv_ps(minus, one, _mm256_cmp_ps(s, zero, _CMP_GE_OQ));
        __m256 acc = zero, div = zero;
        for (int32_t j = 0; j < c->k; j++) {
            __m256 wj = _mm256_set1_ps(c->w[j]);
            __m256 v = _mm256_mul_ps(wj, _mm256_loadu_ps(c->taus[j] + i));
            __m256 sv = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), one),
                                     _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), minus));
            __m256 keep = _mm256_cmp_ps(sv, s, _CMP_EQ_OQ);
            // acc += W, div += w_j where kept
            acc = _mm256_blendv_ps(acc, _mm256_add_ps(acc, v), keep);
            div = _mm256_blendv_ps(div, _mm256_add_ps(div, wj), keep);
        }
        if (divide == DIVIDE_FLOOR) acc = _mm256_div_ps(acc, _mm256_blendv_ps(div, floor, _mm256_cmp_ps(div, floor, _CMP_LT_OQ)));
        else if (divide == DIVIDE_NONZERO) acc = _mm256_div_ps(acc, _mm256_blendv_ps(div, one, _mm256_cmp_ps(div, zero, _CMP_EQ_OQ)));
        if (scaled) acc = _mm256_mul_ps(lambda, acc);
        _mm256_storeu_ps(c->out + i, _mm256_add_ps(_mm256_loadu_ps(c->base + i), acc));
    }
    disjoint_combine_kernel(c, i, hi);
}

/* The election and the division as constants of each combine's copy (SCE's, TIES'), out of its loops. */
MO_AVX2 static void disjoint_combine_avx2(const combine_t *c, int64_t lo, int64_t hi) {
    if (!c->elect_weighted && c->divide == DIVIDE_FLOOR && !c->scaled) disjoint_combine_avx2_body(c, lo, hi, 0, DIVIDE_FLOOR, 0);
    else disjoint_combine_avx2_body(c, lo, hi, c->elect_weighted, c->divide, c->scaled);
}

static void disjoint_combine_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) disjoint_combine_avx2(c, lo, hi); else disjoint_combine_portable(c, lo, hi);
}

int32_t mo_disjoint_mean(const float *const *taus, const float *w, int32_t k, const float *base, float floor,
                         float *out, int64_t n, int32_t threads) {
    if (k < 1 || !taus || !w || !base || !out || n < 0) return MO_ERR_ARG;
    combine_t c = { .taus = taus, .w = w, .k = k, .base = base, .elect_weighted = 0, .divide = DIVIDE_FLOOR, .floor = floor,
                    .scaled = 0, .lambda = 1.0f, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, disjoint_combine_task, &c);
    return MO_OK;
}

int32_t mo_ties_combine(const float *const *taus, const float *w, int32_t k, const float *base, int32_t normalize, int32_t scaled,
                        float lambda, float *out, int64_t n, int32_t threads) {
    if (k < 1 || !taus || !w || !base || !out || n < 0) return MO_ERR_ARG;
    combine_t c = { .taus = taus, .w = w, .k = k, .base = base, .elect_weighted = 1, .divide = normalize ? DIVIDE_NONZERO : DIVIDE_NONE,
                    .floor = 0.0f, .scaled = scaled, .lambda = lambda, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, disjoint_combine_task, &c);
    return MO_OK;
}
