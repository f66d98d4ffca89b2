/*
 * Karcher's fused chunk ops (docs/methods.md, "karcher"; the reference loops are KarcherLoops in
 * the Java backend): each runs, per element and in the same order, the chain of separate float32
 * ops the method ran before (scale, weightedSum, fill), every product and sum rounded, no FMA (the
 * build passes -ffp-contract=off), so one sweep of a chunk gives their bits. The work goes through
 * small stack buffers per sub-block, so the loops vectorise with a unit written over its input. The
 * loop bodies are compiled twice (baseline ISA and AVX2) from the same inline kernels.
 */
#include "mo_internal.h"

#define SUB 1024
#define INLINE static inline __attribute__((always_inline))

/* The weight 1 of weightedSum(x, y; 1, a), read through a volatile so the compiler cannot fold 1*x
   into x: a real product, as in mo_weighted_sum (it quiets a signalling NaN). */
static volatile float one_weight = 1.0f;

typedef struct {
    const float *const *xs;
    const float *scales;
    float *const *units;
    const float *w;
    int32_t k;
    float f;
    float *u;
} mean_t;

typedef struct {
    const float *const *units;
    const float *u;
    const float *minus_cos, *coef;
    int32_t k;
    float one;
    float *t;
} tangent_t;

/* units[p] = scales[p] * xs[p] (units NULL: not written); acc = (w0 * units0) + (w1 * units1) + ... left to right; u = f * acc. */
INLINE void mean_kernel(const mean_t *c, int64_t lo, int64_t hi) {
    float v[SUB], acc[SUB];
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        for (int32_t p = 0; p < c->k; p++) {
            const float *x = c->xs[p] + s;
            float *up = c->units ? c->units[p] + s : NULL;
            float sc = c->scales[p], wp = c->w[p];
            for (int64_t i = 0; i < m; i++) v[i] = sc * x[i];
            if (up) for (int64_t i = 0; i < m; i++) up[i] = v[i];
            if (p == 0) for (int64_t i = 0; i < m; i++) acc[i] = wp * v[i];
            else for (int64_t i = 0; i < m; i++) { float prod = wp * v[i]; acc[i] = acc[i] + prod; }
        }
        float f = c->f;
        for (int64_t i = 0; i < m; i++) c->u[s + i] = f * acc[i];
    }
}

/* acc = +0.0; per unit p: tmp = (1 * units[p]) + (minus_cos[p] * u); acc = (1 * acc) + (coef[p] * tmp). */
INLINE void tangent_kernel(const tangent_t *c, int64_t lo, int64_t hi) {
    float acc[SUB];
    const float one = c->one;
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        const float *u = c->u + s;
        for (int64_t i = 0; i < m; i++) acc[i] = 0.0f;
        for (int32_t p = 0; p < c->k; p++) {
            const float *up = c->units[p] + s;
            float mc = c->minus_cos[p], cf = c->coef[p];
            for (int64_t i = 0; i < m; i++) {
                float tmp = (one * up[i]) + (mc * u[i]);
                acc[i] = (one * acc[i]) + (cf * tmp);
            }
        }
        for (int64_t i = 0; i < m; i++) c->t[s + i] = acc[i];
    }
}

static void mean_portable(const mean_t *c, int64_t lo, int64_t hi) { mean_kernel(c, lo, hi); }
MO_AVX2 static void mean_avx2(const mean_t *c, int64_t lo, int64_t hi) { mean_kernel(c, lo, hi); }
static void tangent_portable(const tangent_t *c, int64_t lo, int64_t hi) { tangent_kernel(c, lo, hi); }
MO_AVX2 static void tangent_avx2(const tangent_t *c, int64_t lo, int64_t hi) { tangent_kernel(c, lo, hi); }

static void mean_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) mean_avx2(c, lo, hi); else mean_portable(c, lo, hi);
}
static void tangent_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) tangent_avx2(c, lo, hi); else tangent_portable(c, lo, hi);
}

int32_t mo_karcher_mean(const float *const *xs, const float *scales, float *const *units, const float *w, int32_t k,
                        float f, float *u, int64_t n, int32_t threads) {
    if (k < 1 || !xs || !scales || !w || !u || n < 0) return MO_ERR_ARG;
    mean_t c = { .xs = xs, .scales = scales, .units = units, .w = w, .k = k, .f = f, .u = u };
    mo_parallel_for(n, MO_CHUNK, threads, mean_task, &c);
    return MO_OK;
}

int32_t mo_karcher_tangent(const float *const *units, const float *u, const float *minus_cos, const float *coef, int32_t k,
                           float *t, int64_t n, int32_t threads) {
    if (k < 0 || (k > 0 && (!units || !minus_cos || !coef)) || !u || !t || n < 0) return MO_ERR_ARG;
    tangent_t c = { .units = units, .u = u, .minus_cos = minus_cos, .coef = coef, .k = k, .one = one_weight, .t = t };
    mo_parallel_for(n, MO_CHUNK, threads, tangent_task, &c);
    return MO_OK;
}

/* ---------------------------------------------------------------- mean and tangent in one sweep */

typedef struct {
    const float *const *xs;
    const float *scales, *w;
    int32_t k;
    float f;
    const int32_t *terms;
    const float *minus_cos, *coef;
    int32_t nterms;
    float one;
    float *t;
} mean_tangent_t;

/* Per sub-block: u = f * (sum of w_p * (scales_p * x_p)) as mean_kernel, then T from +0.0 as tangent_kernel
   over the units terms[j], each unit computed again from its input (the same product: the same bits). */
INLINE void mean_tangent_kernel(const mean_tangent_t *c, int64_t lo, int64_t hi) {
    float acc[SUB], u[SUB];
    const float one = c->one;
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        for (int32_t p = 0; p < c->k; p++) {
            const float *x = c->xs[p] + s;
            float sc = c->scales[p], wp = c->w[p];
            if (p == 0) for (int64_t i = 0; i < m; i++) { float v = sc * x[i]; acc[i] = wp * v; }
            else for (int64_t i = 0; i < m; i++) { float v = sc * x[i]; float prod = wp * v; acc[i] = acc[i] + prod; }
        }
        float f = c->f;
        for (int64_t i = 0; i < m; i++) { u[i] = f * acc[i]; acc[i] = 0.0f; }
        for (int32_t j = 0; j < c->nterms; j++) {
            int32_t p = c->terms[j];
            const float *x = c->xs[p] + s;
            float sc = c->scales[p], mc = c->minus_cos[j], cf = c->coef[j];
            for (int64_t i = 0; i < m; i++) {
                float v = sc * x[i];
                float tmp = (one * v) + (mc * u[i]);
                acc[i] = (one * acc[i]) + (cf * tmp);
            }
        }
        for (int64_t i = 0; i < m; i++) c->t[s + i] = acc[i];
    }
}

static void mean_tangent_portable(const mean_tangent_t *c, int64_t lo, int64_t hi) { mean_tangent_kernel(c, lo, hi); }
MO_AVX2 static void mean_tangent_avx2(const mean_tangent_t *c, int64_t lo, int64_t hi) { mean_tangent_kernel(c, lo, hi); }
static void mean_tangent_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) mean_tangent_avx2(c, lo, hi); else mean_tangent_portable(c, lo, hi);
}

int32_t mo_karcher_mean_tangent(const float *const *xs, const float *scales, const float *w, int32_t k, float f, const int32_t *terms,
                                const float *minus_cos, const float *coef, int32_t nterms, float *t, int64_t n, int32_t threads) {
    if (k < 1 || !xs || !scales || !w || nterms < 0 || (nterms > 0 && (!terms || !minus_cos || !coef)) || !t || n < 0) return MO_ERR_ARG;
    for (int32_t j = 0; j < nterms; j++) if (terms[j] < 0 || terms[j] >= k) return MO_ERR_ARG;
    mean_tangent_t c = { .xs = xs, .scales = scales, .w = w, .k = k, .f = f, .terms = terms, .minus_cos = minus_cos, .coef = coef,
                         .nterms = nterms, .one = one_weight, .t = t };
    mo_parallel_for(n, MO_CHUNK, threads, mean_tangent_task, &c);
    return MO_OK;
}
