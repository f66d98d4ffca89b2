/*
 * Arcee Fusion's chunk ops (docs/methods.md, "arcee_fusion"): each row's KL divergence, the
 * importances |o - b| KL, the order-key histograms of the quantile passes and the combine, the bits
 * of dev.mergeforge.backend.FusionLoops. The KL sums follow the canonical order of reduce.c over
 * positions within the row (blocks of MO_BLOCK, 64 stripes, mo_tree64, blocks left to right): the
 * 64 stripes of a block take 64 consecutive terms at a time, which the compiler vectorises without
 * reordering any stripe's sum. One body, compiled twice (portable and AVX2); rows on several threads.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "mo_internal.h"
#include "explog.h"

#define KL_EPS 1e-8
#define ORDER_BINS ((int64_t)1 << 16)
#define INLINE static inline __attribute__((always_inline))

/* Rows of at most this many elements keep their exponentials in a worker's buffer (1 MiB) for the
   KL sum; a longer row (a 1-D tensor) computes them again: the same values, so the same bits. */
#define KL_ROW_BUFFER ((int64_t)1 << 16)

/* The canonical sum of exp(x[j] - m) for j < n (positions counted from the row's start); each
   exponential also goes to e[j] when e is not NULL. */
INLINE double sum_exp(const float *x, int64_t n, double m, double *e) {
    double total = 0.0;
    for (int64_t lo = 0; lo < n; lo += MO_BLOCK) {
        int64_t len = n - lo < MO_BLOCK ? n - lo : MO_BLOCK, full = len & ~(int64_t)(MO_STRIPES - 1);
        const float *xb = x + lo;
        double s[MO_STRIPES] = {0};
        if (e) {
            double *eb = e + lo;
            for (int64_t g = 0; g < full; g += MO_STRIPES)
                for (int j = 0; j < MO_STRIPES; j++) { eb[g + j] = mo_exp((double)xb[g + j] - m); s[j] += eb[g + j]; }
            for (int64_t p = full; p < len; p++) { eb[p] = mo_exp((double)xb[p] - m); s[p - full] += eb[p]; }
        } else {
            for (int64_t g = 0; g < full; g += MO_STRIPES)
                for (int j = 0; j < MO_STRIPES; j++) s[j] += mo_exp((double)xb[g + j] - m);
            for (int64_t p = full; p < len; p++) s[p - full] += mo_exp((double)xb[p] - m);
        }
        total += mo_tree64(s);
    }
    return total;
}

/* p log(p/q), p = eo (1/so) + eps, q = eb (1/sb) + eps (rb = 1/sb, ro = 1/so). */
INLINE double kl_term(double eb, double eo, double rb, double ro) {
    double p = eo * ro + KL_EPS;
    double q = eb * rb + KL_EPS;
    return p * mo_log(p / q);
}

/* KL(p || q) of one row of n elements, in double; NaN when a sum is. buf: 2n doubles, or NULL. */
INLINE double row_kl_body(const float *b, const float *o, int64_t n, double *buf) {
    // the rows' maxima in float, the first of equal values kept
    float fb = -INFINITY, fo = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        fb = b[j] > fb ? b[j] : fb;
        fo = o[j] > fo ? o[j] : fo;
    }
    double mb = fb, mo = fo;
    double *ebuf = buf, *obuf = buf ? buf + n : NULL;
    double sb = sum_exp(b, n, mb, ebuf), so = sum_exp(o, n, mo, obuf);
    // a NaN or +inf in a row makes its sums NaN (-inf only gives exp 0): its KL is NaN
    if (isnan(sb + so)) return NAN;
    // the softmaxes' divisions as products with the reciprocals (one division a row, not two an element)
    double rb = 1.0 / sb, ro = 1.0 / so;
    // KL = sum p log(p/q), in the canonical order
    double kl = 0.0;
    for (int64_t lo = 0; lo < n; lo += MO_BLOCK) {
        int64_t len = n - lo < MO_BLOCK ? n - lo : MO_BLOCK, full = len & ~(int64_t)(MO_STRIPES - 1);
        const float *bb = b + lo, *ob = o + lo;
        double s[MO_STRIPES] = {0};
        if (buf) {
            const double *eb = ebuf + lo, *eo = obuf + lo;
            for (int64_t g = 0; g < full; g += MO_STRIPES)
                for (int j = 0; j < MO_STRIPES; j++) s[j] += kl_term(eb[g + j], eo[g + j], rb, ro);
            for (int64_t p = full; p < len; p++) s[p - full] += kl_term(eb[p], eo[p], rb, ro);
        } else {
            for (int64_t g = 0; g < full; g += MO_STRIPES)
                for (int j = 0; j < MO_STRIPES; j++)
                    s[j] += kl_term(mo_exp((double)bb[g + j] - mb), mo_exp((double)ob[g + j] - mo), rb, ro);
            for (int64_t p = full; p < len; p++) s[p - full] += kl_term(mo_exp((double)bb[p] - mb), mo_exp((double)ob[p] - mo), rb, ro);
        }
        kl += mo_tree64(s);
    }
    return kl;
}

static double row_kl_portable(const float *b, const float *o, int64_t n, double *buf) { return row_kl_body(b, o, n, buf); }
MO_AVX2 static double row_kl_avx2(const float *b, const float *o, int64_t n, double *buf) { return row_kl_body(b, o, n, buf); }

typedef struct {
    const float *b, *o;
    int64_t cols;
    double *kl;
    double *buffers;   // 2 cols doubles per worker, or NULL
} rows_t;

static void row_kl_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    const rows_t *r = ctx;
    int avx2 = mo_use_avx2();
    double *buf = r->buffers ? r->buffers + (int64_t)worker * 2 * r->cols : NULL;
    for (int64_t i = lo; i < hi; i++) {
        const float *b = r->b + i * r->cols, *o = r->o + i * r->cols;
        r->kl[i] = avx2 ? row_kl_avx2(b, o, r->cols, buf) : row_kl_portable(b, o, r->cols, buf);
    }
}

int32_t mo_row_kl(const float *b, const float *o, int64_t rows, int64_t cols, double *kl, int32_t threads) {
    if (rows < 0 || cols <= 0 || (rows > 0 && (!b || !o || !kl))) return MO_ERR_ARG;
    int64_t per = MO_CHUNK / cols > 0 ? MO_CHUNK / cols : 1;
    int workers = mo_workers(rows, per, threads);
    rows_t r = { .b = b, .o = o, .cols = cols, .kl = kl,
                 .buffers = cols <= KL_ROW_BUFFER ? mo_thread_scratch(MO_SCRATCH_FUSION, (int64_t)workers * 2 * cols * (int64_t)sizeof(double)) : NULL };
    mo_parallel_for(rows, per, threads, row_kl_task, &r);
    return MO_OK;
}

/* ---------------------------------------------------------------- importances and the combine */

typedef struct {
    const float *b, *o, *kl;
    int64_t cols;
    float t;
    float *out;
    int combine;
} elements_t;

/* imp = |o - b| kl[row], or the combine b + d [|d| kl[row] >= t], over [lo, hi), a row's run at a time. */
INLINE void elements_body(const elements_t *e, int64_t lo, int64_t hi) {
    int64_t r = lo / e->cols, end = (r + 1) * e->cols;
    for (int64_t i = lo; i < hi; r++, end += e->cols) {
        int64_t stop = end < hi ? end : hi;
        float k = e->kl[r], t = e->t;
        if (e->combine) {
            for (; i < stop; i++) {
                float d = e->o[i] - e->b[i];
                e->out[i] = e->b[i] + d * (fabsf(d) * k >= t ? 1.0f : 0.0f);
            }
        } else {
            for (; i < stop; i++) e->out[i] = fabsf(e->o[i] - e->b[i]) * k;
        }
    }
}

static void elements_portable(const elements_t *e, int64_t lo, int64_t hi) { elements_body(e, lo, hi); }
MO_AVX2 static void elements_avx2(const elements_t *e, int64_t lo, int64_t hi) { elements_body(e, lo, hi); }

static void elements_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    (void)worker;
    if (mo_use_avx2()) elements_avx2(ctx, lo, hi); else elements_portable(ctx, lo, hi);
}

static int32_t elements(const float *b, const float *o, int64_t n, int64_t cols, const float *kl, float t, float *out,
                        int combine, int32_t threads) {
    if (n < 0 || cols <= 0 || n % cols != 0 || (n > 0 && (!b || !o || !kl || !out))) return MO_ERR_ARG;
    elements_t e = { .b = b, .o = o, .kl = kl, .cols = cols, .t = t, .out = out, .combine = combine };
    mo_parallel_for(n, MO_CHUNK, threads, elements_task, &e);
    return MO_OK;
}

int32_t mo_fusion_importance(const float *b, const float *o, int64_t n, int64_t cols, const float *kl, float *imp, int32_t threads) {
    return elements(b, o, n, cols, kl, 0.0f, imp, 0, threads);
}

int32_t mo_fusion_combine(const float *b, const float *o, int64_t n, int64_t cols, const float *kl, float t, float *out, int32_t threads) {
    return elements(b, o, n, cols, kl, t, out, 1, threads);
}

/* ---------------------------------------------------------------- order-key histograms */

typedef struct {
    const float *x;
    int32_t high;
    int64_t *counts;   // ORDER_BINS per worker
} order_t;

/* Float bits mapped so that unsigned order is numeric order (FusionLoops.orderKey). */
INLINE uint32_t order_key(float f) {
    uint32_t b = mo_bits(f);
    return b ^ ((uint32_t)((int32_t)b >> 31) | 0x80000000u);
}

/* The low bits of the elements of [lo, hi) in high bin `high`, one by one. */
static void order_low_portable(const float *x, uint32_t high, int64_t *h, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        uint32_t k = order_key(x[i]);
        if ((k >> 16) == high) h[k & 0xffff]++;
    }
}

/* As order_low_portable. Few elements lie in one bin: the keys of 8 at a time are tested in a
   register, and only a run holding one is counted one by one. */
MO_AVX2 static void order_low_avx2(const float *x, uint32_t high, int64_t *h, int64_t lo, int64_t hi) {
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u), want = _mm256_set1_epi32((int)high);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        // order_key on 8 lanes: b ^ ((b >> 31, arithmetic) | sign)
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i k = _mm256_xor_si256(b, _mm256_or_si256(_mm256_srai_epi32(b, 31), sign));
        __m256i eq = _mm256_cmpeq_epi32(_mm256_srli_epi32(k, 16), want);
        if (_mm256_testz_si256(eq, eq)) continue;
        order_low_portable(x, high, h, i, i + 8);
    }
    order_low_portable(x, high, h, i, hi);
}

static void order_range(const float *x, int32_t high, int64_t *h, int64_t lo, int64_t hi) {
    if (high < 0) {
        for (int64_t i = lo; i < hi; i++) h[order_key(x[i]) >> 16]++;
    } else if (mo_use_avx2()) {
        order_low_avx2(x, (uint32_t)high, h, lo, hi);
    } else {
        order_low_portable(x, (uint32_t)high, h, lo, hi);
    }
}

static void order_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    const order_t *r = ctx;
    order_range(r->x, r->high, r->counts + (int64_t)worker * ORDER_BINS, lo, hi);
}

int32_t mo_order_histogram(const float *x, int64_t n, int32_t high, int64_t *hist, int32_t threads) {
    if (high >= ORDER_BINS || n < 0 || !hist || (n > 0 && !x)) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    int workers = mo_workers(n, MO_CHUNK, threads);
    if (workers == 1) { order_range(x, high, hist, 0, n); return MO_OK; }
    // each worker counts into its own bins; integers, so the sum is the same whatever the split
    order_t r = { .x = x, .high = high, .counts = mo_thread_scratch(MO_SCRATCH_FUSION, (int64_t)workers * ORDER_BINS * (int64_t)sizeof(int64_t)) };
    if (!r.counts) return MO_ERR_NOMEM;
    memset(r.counts, 0, (size_t)workers * ORDER_BINS * sizeof(int64_t));
    mo_parallel_for(n, MO_CHUNK, threads, order_task, &r);
    for (int w = 0; w < workers; w++)
        for (int64_t v = 0; v < ORDER_BINS; v++) hist[v] += r.counts[(int64_t)w * ORDER_BINS + v];
    return MO_OK;
}
