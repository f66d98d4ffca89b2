/*
 * The chunk ops of dev.mergeforge.backend.ChunkOps that libmergeops had no entry point for:
 * elementwise maps, |x|-bit histograms, the magnitude rank window applied with tie counts carried
 * from chunk to chunk, and the TIES divisor. Each gives the bits of
 * dev.mergeforge.backend.java.JavaChunkOps: the maps are one float32 operation per element as
 * written (no FMA: -ffp-contract=off), histograms are integer counts (any order), and the rank
 * window counts ties per fixed chunk and prefix-sums the counts in chunk order, as the Java
 * reference does, so the result never depends on the thread count. Loop bodies are inline kernels
 * compiled twice (baseline ISA and AVX2): same operations, same bits.
 */
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#include "mo_internal.h"

#define INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- maps */

typedef struct {
    int32_t op;
    const float *x, *y;
    float s, t;
    float *out;
} map_t;

INLINE void map_kernel(const map_t *m, int64_t lo, int64_t hi) {
    const float *x = m->x, *y = m->y;
    float *o = m->out;
    float s = m->s, t = m->t;
    switch (m->op) {
        // out = x / s (a division, not a reciprocal)
        case MO_MAP_DIVIDE: for (int64_t i = lo; i < hi; i++) o[i] = x[i] / s; break;
        // out = x * y
        case MO_MAP_MUL: for (int64_t i = lo; i < hi; i++) o[i] = x[i] * y[i]; break;
        // out = x / y
        case MO_MAP_DIV: for (int64_t i = lo; i < hi; i++) o[i] = x[i] / y[i]; break;
        // out = |x|: the sign bit cleared (NaN payloads kept)
        case MO_MAP_ABS:
            for (int64_t i = lo; i < hi; i++) o[i] = mo_float(mo_bits(x[i]) & 0x7fffffffu);
            break;
        // out = x < s ? s : (x > t ? t : x): NaN fails both and is kept, -0 against a bound 0 stays -0
        case MO_MAP_CLAMP:
            for (int64_t i = lo; i < hi; i++) { float v = x[i]; o[i] = v < s ? s : (v > t ? t : v); }
            break;
        // out = s
        case MO_MAP_FILL: for (int64_t i = lo; i < hi; i++) o[i] = s; break;
        // out = (s * x) + t, the product rounded first
        case MO_MAP_AFFINE:
            for (int64_t i = lo; i < hi; i++) { float p = s * x[i]; o[i] = p + t; }
            break;
        // out = y == 0 (either sign) ? +0 : x
        default:
            for (int64_t i = lo; i < hi; i++) o[i] = y[i] == 0.0f ? 0.0f : x[i];
            break;
    }
}

static void map_portable(const map_t *m, int64_t lo, int64_t hi) { map_kernel(m, lo, hi); }
MO_AVX2 static void map_avx2(const map_t *m, int64_t lo, int64_t hi) { map_kernel(m, lo, hi); }

static void map_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) map_avx2(c, lo, hi); else map_portable(c, lo, hi);
}

int32_t mo_map(int32_t op, const float *x, const float *y, float s, float t, float *out, int64_t n, int32_t threads) {
    if (op < MO_MAP_DIVIDE || op > MO_MAP_KEEP_NONZERO || n < 0) return MO_ERR_ARG;
    int needs_y = op == MO_MAP_MUL || op == MO_MAP_DIV || op == MO_MAP_KEEP_NONZERO;
    if (n > 0 && (!out || (op != MO_MAP_FILL && !x) || (needs_y && !y))) return MO_ERR_ARG;
    if (op == MO_MAP_CLAMP && !(s <= t)) return MO_ERR_ARG;
    map_t m = { .op = op, .x = x, .y = y, .s = s, .t = t, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, map_task, &m);
    return MO_OK;
}

/* ---------------------------------------------------------------- |x|-bit histograms */

#define HI_BINS (1 << 15)
#define LO_BINS (1 << 16)
/* Interleaved sub-histograms per worker in the high pass, so runs of equal magnitudes do not
   serialise on one counter. */
#define HI_WAYS 4

typedef struct {
    const float *x;
    int32_t high;
    int64_t *scratch;     // per worker: HI_WAYS * HI_BINS or LO_BINS counters
    int64_t per_worker;
    char *zeroed;         // per worker: its counters were zeroed by its first task of this call
} hist_t;

INLINE uint32_t abs_bits(const float *x, int64_t i) { return mo_bits(x[i]) & 0x7fffffffu; }

static void high_range(const float *x, int64_t *h, int64_t lo, int64_t hi) {
    int64_t i = lo;
    for (; i + HI_WAYS <= hi; i += HI_WAYS) {
        h[abs_bits(x, i) >> 16]++;
        h[HI_BINS + (abs_bits(x, i + 1) >> 16)]++;
        h[2 * HI_BINS + (abs_bits(x, i + 2) >> 16)]++;
        h[3 * HI_BINS + (abs_bits(x, i + 3) >> 16)]++;
    }
    for (; i < hi; i++) h[abs_bits(x, i) >> 16]++;
}

static void low_range(const float *x, uint32_t high, int64_t *h, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        uint32_t a = abs_bits(x, i);
        if ((a >> 16) == high) h[a & 0xffff]++;
    }
}

/* 8 lanes at a time: only groups holding an element of the selected high bin are counted one by one. */
MO_AVX2 static void low_avx2(const float *x, uint32_t high, int64_t *h, int64_t lo, int64_t hi) {
    const __m256i mask = _mm256_set1_epi32(0x7fffffff), t = _mm256_set1_epi32((int)high);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256i b = _mm256_srli_epi32(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)), mask), 16);
        __m256i hit = _mm256_cmpeq_epi32(b, t);
        if (!_mm256_testz_si256(hit, hit)) low_range(x, high, h, i, i + 8);
    }
    low_range(x, high, h, i, hi);
}

static void hist_task(void *c, int w, int64_t lo, int64_t hi) {
    hist_t *r = c;
    int64_t *h = r->scratch + (int64_t)w * r->per_worker;
    // a worker's counters are zeroed by the worker itself, once, so workers that never join cost nothing
    if (!r->zeroed[w]) { memset(h, 0, (size_t)r->per_worker * sizeof(int64_t)); r->zeroed[w] = 1; }
    if (r->high < 0) high_range(r->x, h, lo, hi);
    else if (mo_use_avx2()) low_avx2(r->x, (uint32_t)r->high, h, lo, hi);
    else low_range(r->x, (uint32_t)r->high, h, lo, hi);
}

/* hist[b] += the counts of every worker that ran (and every way) for the bins [lo, hi). */
typedef struct {
    const hist_t *r;
    int64_t *hist, bins;
    int workers, ways;
} hist_sum_t;

static void hist_sum_task(void *c, int w, int64_t lo, int64_t hi) {
    const hist_sum_t *s = c; (void)w;
    for (int p = 0; p < s->workers; p++) {
        if (!s->r->zeroed[p]) continue;
        for (int way = 0; way < s->ways; way++) {
            const int64_t *h = s->r->scratch + (int64_t)p * s->r->per_worker + (int64_t)way * s->bins;
            for (int64_t b = lo; b < hi; b++) s->hist[b] += h[b];
        }
    }
}

int32_t mo_abs_histogram(const float *x, int64_t n, int32_t high, int64_t *hist, int32_t threads) {
    if (high >= HI_BINS || n < 0 || !hist || (n > 0 && !x)) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    int64_t bins = high < 0 ? HI_BINS : LO_BINS;
    int workers = mo_workers(n, MO_CHUNK, threads);
    if (workers == 1 && high >= 0) {
        // one task: count straight into the caller's histogram
        if (mo_use_avx2()) low_avx2(x, (uint32_t)high, hist, 0, n); else low_range(x, (uint32_t)high, hist, 0, n);
        return MO_OK;
    }
    char zeroed[workers];
    memset(zeroed, 0, sizeof zeroed);
    hist_t r = { .x = x, .high = high, .per_worker = high < 0 ? HI_WAYS * HI_BINS : LO_BINS, .zeroed = zeroed };
    r.scratch = mo_thread_scratch(MO_SCRATCH_HISTOGRAM, (int64_t)workers * r.per_worker * (int64_t)sizeof(int64_t));
    if (!r.scratch) return MO_ERR_NOMEM;
    mo_parallel_for(n, MO_CHUNK, threads, hist_task, &r);
    // hist += the sum of every worker's (and way's) counts: integers, so any split of the bins gives the same counts
    hist_sum_t sum = { .r = &r, .hist = hist, .bins = bins, .workers = workers, .ways = high < 0 ? HI_WAYS : 1 };
    mo_parallel_for(bins, 1 << 13, threads, hist_sum_task, &sum);
    return MO_OK;
}

/* ---------------------------------------------------------------- rank window */

typedef struct {
    float *x;
    int32_t has_upper;
    int32_t upper, lower;        // |x| bits at the window's two ends (non-negative)
    int64_t skip_upper, keep_lower;
    int64_t *eq_up, *eq_dn;      // per chunk: counts, then the counts before the chunk
} window_t;

/* Entries equal to upper and to lower in [lo, hi). */
static void ties_range(const window_t *r, int64_t lo, int64_t hi, int64_t *cu, int64_t *cd) {
    for (int64_t i = lo; i < hi; i++) {
        int32_t a = (int32_t)abs_bits(r->x, i);
        *cu += a == r->upper;
        *cd += a == r->lower;
    }
}

MO_AVX2 static void ties_avx2(const window_t *r, int64_t lo, int64_t hi, int64_t *cu, int64_t *cd) {
    const __m256i mask = _mm256_set1_epi32(0x7fffffff), up = _mm256_set1_epi32(r->upper), dn = _mm256_set1_epi32(r->lower);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(r->x + i)), mask);
        *cu += __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, up))));
        *cd += __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, dn))));
    }
    ties_range(r, i, hi, cu, cd);
}

static void ties_task(void *c, int w, int64_t lo, int64_t hi) {
    window_t *r = c; (void)w;
    int64_t cu = 0, cd = 0;
    if (mo_use_avx2()) ties_avx2(r, lo, hi, &cu, &cd); else ties_range(r, lo, hi, &cu, &cd);
    r->eq_up[lo / MO_CHUNK] = cu;
    r->eq_dn[lo / MO_CHUNK] = cd;
}

/* The window over [lo, hi) given the ties before lo: RankWindow.keeps, element by element. */
static void keep_range(const window_t *r, int64_t lo, int64_t hi, int64_t *pcu, int64_t *pcd) {
    int64_t cu = *pcu, cd = *pcd;
    for (int64_t i = lo; i < hi; i++) {
        int32_t a = (int32_t)abs_bits(r->x, i);
        // kept iff lower <= |x| <= upper, less the first skip_upper equal to upper and all but the first keep_lower equal to lower
        int keep = a <= r->upper && a >= r->lower;
        if (r->has_upper && a == r->upper && cu < r->skip_upper) keep = 0;
        if (a == r->lower && cd >= r->keep_lower) keep = 0;
        if (!keep) r->x[i] = 0.0f;
        cu += a == r->upper;
        cd += a == r->lower;
    }
    *pcu = cu; *pcd = cd;
}

/* 8 lanes at a time. A group's ties with an end are decided together when they all fall on one side
   of that end's count (every tie with upper among the first skip_upper: dropped; every tie with lower
   past the first keep_lower: dropped; otherwise kept like the range); only a group whose ties straddle
   a count goes through the counting loop, at most one group per end and call. */
MO_AVX2 static void keep_avx2(const window_t *r, int64_t lo, int64_t hi, int64_t *cu, int64_t *cd) {
    const __m256i mask = _mm256_set1_epi32(0x7fffffff);
    const __m256i up = _mm256_set1_epi32(r->upper), dn = _mm256_set1_epi32(r->lower);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(r->x + i)), a = _mm256_and_si256(v, mask);
        // drop iff a > upper or lower > a (signed compares are exact: every value lies in [0, 2^31))
        __m256i drop = _mm256_or_si256(_mm256_cmpgt_epi32(a, up), _mm256_cmpgt_epi32(dn, a));
        __m256i tu = _mm256_cmpeq_epi32(a, up), td = _mm256_cmpeq_epi32(a, dn);
        unsigned mu = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(tu)), md = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(td));
        if (mu | md) {
            int64_t nu = __builtin_popcount(mu), nd = __builtin_popcount(md);
            int up_straddles = r->has_upper && *cu < r->skip_upper && *cu + nu > r->skip_upper;
            int dn_straddles = *cd < r->keep_lower && *cd + nd > r->keep_lower;
            if (up_straddles || dn_straddles) { keep_range(r, i, i + 8, cu, cd); continue; }
            if (r->has_upper && *cu < r->skip_upper) drop = _mm256_or_si256(drop, tu);
            if (*cd >= r->keep_lower) drop = _mm256_or_si256(drop, td);
            *cu += nu;
            *cd += nd;
        }
        // +0.0 where dropped, the element's bits where kept
        _mm256_storeu_si256((__m256i *)(r->x + i), _mm256_andnot_si256(drop, v));
    }
    keep_range(r, i, hi, cu, cd);
}

static void keep_task(void *c, int w, int64_t lo, int64_t hi) {
    window_t *r = c; (void)w;
    int64_t cu = r->eq_up[lo / MO_CHUNK], cd = r->eq_dn[lo / MO_CHUNK];
    if (mo_use_avx2()) keep_avx2(r, lo, hi, &cu, &cd); else keep_range(r, lo, hi, &cu, &cd);
}

int32_t mo_keep_ranks(float *x, int64_t n, int32_t has_upper, int32_t upper, int64_t skip_upper, int32_t lower,
                      int64_t keep_lower, int64_t *seen, int32_t threads) {
    if (n < 0 || !seen || (n > 0 && !x) || upper < 0 || lower < 0 || skip_upper < 0 || keep_lower < 0) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    int64_t chunks = (n + MO_CHUNK - 1) / MO_CHUNK;
    window_t r = { .x = x, .has_upper = has_upper != 0, .upper = upper, .lower = lower, .skip_upper = skip_upper,
                   .keep_lower = keep_lower };
    r.eq_up = malloc((size_t)chunks * sizeof(int64_t));
    r.eq_dn = malloc((size_t)chunks * sizeof(int64_t));
    if (!r.eq_up || !r.eq_dn) { free(r.eq_up); free(r.eq_dn); return MO_ERR_NOMEM; }
    // how many equal each end in each chunk, then how many come before each chunk (from the earlier chunks' seen)
    mo_parallel_for(n, MO_CHUNK, threads, ties_task, &r);
    int64_t su = seen[0], sd = seen[1];
    for (int64_t c = 0; c < chunks; c++) {
        int64_t eu = r.eq_up[c], ed = r.eq_dn[c];
        r.eq_up[c] = su; r.eq_dn[c] = sd;
        su += eu; sd += ed;
    }
    mo_parallel_for(n, MO_CHUNK, threads, keep_task, &r);
    free(r.eq_up);
    free(r.eq_dn);
    seen[0] = su;
    seen[1] = sd;
    return MO_OK;
}

/* ---------------------------------------------------------------- TIES divisor */

typedef struct {
    const float *const *xs;
    const float *w;
    int32_t k;
    const float *sign;
    float *out;
} divisor_t;

#define SUB 1024

/* div = sum of w_j over the inputs whose sign (0 for either zero, NaN none) equals sign, in model order;
   through a stack buffer so out may alias any input. */
INLINE void divisor_kernel(const divisor_t *c, int64_t lo, int64_t hi) {
    float div[SUB];
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        const float *sg = c->sign + s;
        for (int64_t i = 0; i < m; i++) div[i] = 0.0f;
        for (int32_t j = 0; j < c->k; j++) {
            const float *xj = c->xs[j] + s;
            float wj = c->w[j];
            for (int64_t i = 0; i < m; i++) {
                float v = xj[i];
                float sv = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
                float d = div[i] + wj;
                div[i] = sv == sg[i] ? d : div[i];
            }
        }
        for (int64_t i = 0; i < m; i++) c->out[s + i] = div[i];
    }
}

static void divisor_portable(const divisor_t *c, int64_t lo, int64_t hi) { divisor_kernel(c, lo, hi); }

/* The same selection with explicit masks: sign(v) as (v > 0 & 1) | (v < 0 & -1), w_j added where it
   equals the elected sign; every input of a group is read before its output is stored. */
MO_AVX2 static void divisor_avx2(const divisor_t *c, int64_t lo, int64_t hi) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), minus = _mm256_set1_ps(-1.0f);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 s = _mm256_loadu_ps(c->sign + i), div = zero;
        for (int32_t j = 0; j < c->k; j++) {
            __m256 v = _mm256_loadu_ps(c->xs[j] + i);
            __m256 sv = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), one),
                                     _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), minus));
            // div += w_j where sign(v) == sign
            div = _mm256_blendv_ps(div, _mm256_add_ps(div, _mm256_set1_ps(c->w[j])), _mm256_cmp_ps(sv, s, _CMP_EQ_OQ));
        }
        _mm256_storeu_ps(c->out + i, div);
    }
    divisor_kernel(c, i, hi);
}

static void divisor_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) divisor_avx2(c, lo, hi); else divisor_portable(c, lo, hi);
}

int32_t mo_disjoint_divisor(const float *const *xs, const float *w, int32_t k, const float *sign, float *out, int64_t n,
                            int32_t threads) {
    if (k < 0 || n < 0 || (k > 0 && (!xs || !w)) || (n > 0 && (!sign || !out))) return MO_ERR_ARG;
    divisor_t c = { .xs = xs, .w = w, .k = k, .sign = sign, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, divisor_task, &c);
    return MO_OK;
}
