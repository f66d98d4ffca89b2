/*
 * keepRankRange by radix select on the bits of |x| (for non-negative floats the bit pattern orders
 * like the value): a 15-bit histogram of the high bits, then a 16-bit histogram of the low bits
 * inside the selected high bin, for both boundary ranks at once. Ties rank by lower index first,
 * as dev.mergeforge.backend.java.RankSelect: the entries equal to a boundary value are counted per
 * chunk and a prefix sum tells each chunk how many of them come before it.
 */
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#include "mo_internal.h"

#define HI_BINS (1 << 15)
#define LO_BINS (1 << 16)

static inline uint32_t abs_bits(const float *x, int64_t i) { return mo_bits(x[i]) & 0x7fffffffu; }

typedef struct {
    float *x;
    int64_t *hist;        // per worker: HI_BINS, or 2 * LO_BINS (one per boundary)
    uint32_t top[2];      // selected high bins of the two boundaries
    uint32_t v_up, v_dn;  // boundary values (|x| bits)
    int has_upper, count_up, count_dn;
    int64_t skip_up, keep_dn;
    int64_t *eq_up, *eq_dn;  // per chunk counts, then starts
} rank_t;

/* Four interleaved sub-histograms per worker, so runs of equal magnitudes do not serialise on one counter. */
static void hi_hist_task(void *c, int w, int64_t lo, int64_t hi) {
    rank_t *r = c;
    int64_t *h = r->hist + (int64_t)w * 2 * LO_BINS;
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        h[abs_bits(r->x, i) >> 16]++;
        h[HI_BINS + (abs_bits(r->x, i + 1) >> 16)]++;
        h[2 * HI_BINS + (abs_bits(r->x, i + 2) >> 16)]++;
        h[3 * HI_BINS + (abs_bits(r->x, i + 3) >> 16)]++;
    }
    for (; i < hi; i++) h[abs_bits(r->x, i) >> 16]++;
}

static void lo_hist_range(const rank_t *r, int64_t *h, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
        uint32_t a = abs_bits(r->x, i);
        if ((a >> 16) == r->top[0]) h[a & 0xffff]++;
        if ((a >> 16) == r->top[1]) h[LO_BINS + (a & 0xffff)]++;
    }
}

/* 8 lanes at a time: only groups holding an element of a selected high bin are counted one by one. */
MO_AVX2 static void lo_hist_avx2(const rank_t *r, int64_t *h, int64_t lo, int64_t hi) {
    const __m256i mask = _mm256_set1_epi32(0x7fffffff);
    const __m256i t0 = _mm256_set1_epi32((int)r->top[0]), t1 = _mm256_set1_epi32((int)r->top[1]);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256i b = _mm256_srli_epi32(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)(r->x + i)), mask), 16);
        __m256i hit = _mm256_or_si256(_mm256_cmpeq_epi32(b, t0), _mm256_cmpeq_epi32(b, t1));
        if (!_mm256_testz_si256(hit, hit)) lo_hist_range(r, h, i, i + 8);
    }
    lo_hist_range(r, h, i, hi);
}

static void lo_hist_task(void *c, int w, int64_t lo, int64_t hi) {
    rank_t *r = c;
    int64_t *h = r->hist + (int64_t)w * 2 * LO_BINS;
    if (mo_use_avx2()) { lo_hist_avx2(r, h, lo, hi); return; }
    for (int64_t i = lo; i < hi; i++) {
        uint32_t a = abs_bits(r->x, i);
        if ((a >> 16) == r->top[0]) h[a & 0xffff]++;
        if ((a >> 16) == r->top[1]) h[LO_BINS + (a & 0xffff)]++;
    }
}

/* Entries equal to vUp and to vDn in [lo, hi), 8 lanes at a time. */
MO_AVX2 static void count_avx2(const rank_t *r, int64_t lo, int64_t hi, int64_t *cu, int64_t *cd) {
    const __m256i mask = _mm256_set1_epi32(0x7fffffff), up = _mm256_set1_epi32((int)r->v_up), dn = _mm256_set1_epi32((int)r->v_dn);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(r->x + i)), mask);
        *cu += __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, up))));
        *cd += __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, dn))));
    }
    for (; i < hi; i++) {
        uint32_t a = abs_bits(r->x, i);
        *cu += a == r->v_up;
        *cd += a == r->v_dn;
    }
}

static void count_task(void *c, int w, int64_t lo, int64_t hi) {
    rank_t *r = c; (void)w;
    int64_t cu = 0, cd = 0;
    if (mo_use_avx2()) {
        count_avx2(r, lo, hi, &cu, &cd);
        r->eq_up[lo / MO_CHUNK] = cu;
        r->eq_dn[lo / MO_CHUNK] = cd;
        return;
    }
    for (int64_t i = lo; i < hi; i++) {
        uint32_t a = abs_bits(r->x, i);
        cu += a == r->v_up;
        cd += a == r->v_dn;
    }
    r->eq_up[lo / MO_CHUNK] = cu;
    r->eq_dn[lo / MO_CHUNK] = cd;
}

typedef int32_t __attribute__((may_alias)) alias_i32;

/* No boundary ties to count: keep iff vDn <= |x| <= vUp, a plain (vectorisable) select. */
static inline __attribute__((always_inline)) void apply_plain_kernel(float *x, int64_t n, uint32_t up, uint32_t dn) {
    alias_i32 *b = (alias_i32 *)x;
    for (int64_t i = 0; i < n; i++) {
        int32_t a = b[i] & 0x7fffffff;
        b[i] = (a <= (int32_t)up && a >= (int32_t)dn) ? b[i] : 0;
    }
}
static void apply_plain_portable(float *x, int64_t n, uint32_t up, uint32_t dn) { apply_plain_kernel(x, n, up, dn); }
MO_AVX2 static void apply_plain_avx2(float *x, int64_t n, uint32_t up, uint32_t dn) { apply_plain_kernel(x, n, up, dn); }

/* The counting select for [lo, hi) given the ties before lo; returns nothing, updates x in place. */
static void apply_count_range(const rank_t *r, int64_t lo, int64_t hi, int64_t *pcu, int64_t *pcd) {
    int64_t cu = *pcu, cd = *pcd;
    for (int64_t i = lo; i < hi; i++) {
        uint32_t a = abs_bits(r->x, i);
        // kept iff vDn <= |x| <= vUp, less the boundary ties outside the rank range
        int keep = a <= r->v_up && a >= r->v_dn;
        if (r->count_up && a == r->v_up) { if (cu < r->skip_up) keep = 0; cu++; }
        if (r->count_dn && a == r->v_dn) { if (cd >= r->keep_dn) keep = 0; cd++; }
        if (!keep) r->x[i] = 0.0f;
    }
    *pcu = cu; *pcd = cd;
}

/* 8 lanes at a time: lanes with no boundary tie take the plain select; a group holding a tie goes through the counting loop. */
MO_AVX2 static void apply_count_avx2(const rank_t *r, int64_t lo, int64_t hi, int64_t *cu, int64_t *cd) {
    const __m256i mask = _mm256_set1_epi32(0x7fffffff);
    const __m256i up = _mm256_set1_epi32((int)r->v_up), dn = _mm256_set1_epi32((int)r->v_dn);
    const __m256i tieU = r->count_up ? up : _mm256_set1_epi32(-1), tieD = r->count_dn ? dn : _mm256_set1_epi32(-1);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(r->x + i)), a = _mm256_and_si256(v, mask);
        __m256i tie = _mm256_or_si256(_mm256_cmpeq_epi32(a, tieU), _mm256_cmpeq_epi32(a, tieD));
        if (!_mm256_testz_si256(tie, tie)) { apply_count_range(r, i, i + 8, cu, cd); continue; }
        // drop iff a > vUp or vDn > a (signed compares are exact: all values lie in [0, 2^31))
        __m256i drop = _mm256_or_si256(_mm256_cmpgt_epi32(a, up), _mm256_cmpgt_epi32(dn, a));
        _mm256_storeu_si256((__m256i *)(r->x + i), _mm256_andnot_si256(drop, v));
    }
    apply_count_range(r, i, hi, cu, cd);
}

static void apply_task(void *c, int w, int64_t lo, int64_t hi) {
    rank_t *r = c; (void)w;
    if (!r->count_up && !r->count_dn) {
        if (mo_use_avx2()) apply_plain_avx2(r->x + lo, hi - lo, r->v_up, r->v_dn);
        else apply_plain_portable(r->x + lo, hi - lo, r->v_up, r->v_dn);
        return;
    }
    int64_t cu = r->count_up ? r->eq_up[lo / MO_CHUNK] : 0, cd = r->count_dn ? r->eq_dn[lo / MO_CHUNK] : 0;
    if (mo_use_avx2()) { apply_count_avx2(r, lo, hi, &cu, &cd); return; }
    for (int64_t i = lo; i < hi; i++) {
        uint32_t a = abs_bits(r->x, i);
        // kept iff vDn <= |x| <= vUp, less the boundary ties outside the rank range
        int keep = a <= r->v_up && a >= r->v_dn;
        if (r->count_up && a == r->v_up) { if (cu < r->skip_up) keep = 0; cu++; }
        if (r->count_dn && a == r->v_dn) { if (cd >= r->keep_dn) keep = 0; cd++; }
        if (!keep) r->x[i] = 0.0f;
    }
}

static void zero_task(void *c, int w, int64_t lo, int64_t hi) {
    rank_t *r = c; (void)w;
    memset(r->x + lo, 0, (size_t)(hi - lo) * sizeof(float));
}

/* Sums per-worker histograms into the first. */
static void merge_hists(int64_t *h, int workers, int64_t bins) {
    for (int w = 1; w < workers; w++)
        for (int64_t b = 0; b < bins; b++) h[b] += h[(int64_t)w * bins + b];
}

/* From the top bin down, the bin holding descending rank r; *greater += the counts above it. */
static uint32_t descend(const int64_t *h, int64_t bins, int64_t rank, int64_t *greater) {
    int64_t b = bins - 1;
    for (; b > 0; b--) {
        if (*greater + h[b] > rank) break;
        *greater += h[b];
    }
    return (uint32_t)b;
}

int32_t mo_keep_rank_range(float *x, int64_t n, int64_t from, int64_t to, int32_t threads) {
    if (n <= 0) return MO_OK;
    int64_t f = from > 0 ? from : 0, t = to < n ? to : n;
    rank_t r = { .x = x };
    if (t <= f) { mo_parallel_for(n, MO_CHUNK, threads, zero_task, &r); return MO_OK; }
    if (f == 0 && t == n) return MO_OK;
    int workers = mo_workers(n, MO_CHUNK, threads);
    int64_t chunks = (n + MO_CHUNK - 1) / MO_CHUNK;
    r.hist = calloc((size_t)workers * 2 * LO_BINS, sizeof(int64_t));
    if (!r.hist) return MO_ERR_NOMEM;
    // pass 1: high-bit histogram, shared by both boundaries
    mo_parallel_for(n, MO_CHUNK, threads, hi_hist_task, &r);
    merge_hists(r.hist, workers * 4, HI_BINS);  // 4 sub-histograms per worker, 2 * LO_BINS = 4 * HI_BINS apart
    r.has_upper = f > 0;
    int64_t rank[2] = { f, t - 1 }, greater[2] = { 0, 0 };
    for (int k = 0; k < 2; k++) r.top[k] = descend(r.hist, HI_BINS, rank[k], &greater[k]);
    if (!r.has_upper) r.top[0] = 0xffffffffu;  // matches no high bin
    // pass 2: low-bit histograms inside the selected high bins
    memset(r.hist, 0, (size_t)workers * 2 * LO_BINS * sizeof(int64_t));
    mo_parallel_for(n, MO_CHUNK, threads, lo_hist_task, &r);
    merge_hists(r.hist, workers, 2 * LO_BINS);
    uint32_t v[2];
    int64_t ties[2] = { 0, 0 };
    for (int k = 0; k < 2; k++) {
        if (k == 0 && !r.has_upper) { v[0] = 0x7fffffffu; continue; }
        const int64_t *h = r.hist + (int64_t)k * LO_BINS;
        uint32_t low = descend(h, LO_BINS, rank[k], &greater[k]);
        v[k] = (r.top[k] << 16) | low;
        ties[k] = h[low];
    }
    free(r.hist);
    r.v_up = v[0];
    r.v_dn = v[1];
    r.skip_up = f - greater[0];  // entries equal to vUp to drop, lowest indices first
    r.keep_dn = t - greater[1];  // entries equal to vDn to keep, lowest indices first
    // index-ordered tie counting is needed only where ties straddle a boundary
    r.count_up = r.has_upper && r.skip_up > 0;
    r.count_dn = r.keep_dn < ties[1];
    if (r.v_up == r.v_dn && r.has_upper) r.count_up = r.count_dn = 1;
    if (r.count_up || r.count_dn) {
        r.eq_up = malloc((size_t)chunks * sizeof(int64_t));
        r.eq_dn = malloc((size_t)chunks * sizeof(int64_t));
        if (!r.eq_up || !r.eq_dn) { free(r.eq_up); free(r.eq_dn); return MO_ERR_NOMEM; }
        // pass 3: ties per chunk, then where each chunk's ties start
        mo_parallel_for(n, MO_CHUNK, threads, count_task, &r);
        int64_t su = 0, sd = 0;
        for (int64_t c = 0; c < chunks; c++) {
            int64_t eu = r.eq_up[c], ed = r.eq_dn[c];
            r.eq_up[c] = su; r.eq_dn[c] = sd;
            su += eu; sd += ed;
        }
    }
    // pass 4: zero everything outside the rank range
    mo_parallel_for(n, MO_CHUNK, threads, apply_task, &r);
    free(r.eq_up);
    free(r.eq_dn);
    return MO_OK;
}
