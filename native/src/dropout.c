/*
 * DARE random drop (Yu et al. 2023, arXiv 2311.03099) with Philox-4x32-10 (Salmon et al., SC'11)
 * exactly as dev.mergeforge.backend.Philox: element i draws lane (i & 3) of the block for counter
 * (lo32(i >> 2), hi32(i >> 2), 0, 0) under key (lo32(key), hi32(key)), and is kept iff the top 24
 * bits of the draw are below T = ceil(density * 2^24). The AVX2 path runs 8 counters per vector.
 */
#include <immintrin.h>
#include <math.h>
#include "mo_internal.h"

#define M0 0xD2511F53u
#define M1 0xCD9E8D57u
#define W0 0x9E3779B9u
#define W1 0xBB67AE85u

static void philox_block(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1, uint32_t out[4]) {
    uint32_t x0 = c0, x1 = c1, x2 = 0, x3 = 0;
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)M0 * x0, p1 = (uint64_t)M1 * x2;
        uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0;
        uint32_t y1 = (uint32_t)p1;
        uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;
        uint32_t y3 = (uint32_t)p0;
        x0 = y0; x1 = y1; x2 = y2; x3 = y3;
        k0 += W0;
        k1 += W1;
    }
    out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

typedef struct {
    float *x;
    int64_t n;
    uint32_t k0, k1;
    int64_t thr;
    int divide;      // DENSITY: kept / density, fused into the drop pass
    float density;
    int64_t offset;  // the tensor index of x[0]: element i draws at offset + i
    const float *p;  // per-element keep probabilities (thresholds ceil(p * 2^24)), or NULL for thr
} drop_t;

/* v kept or +0.0, then divided by density when asked: the bits of Java's two passes. */
static inline float finish(const drop_t *d, float v, int keep) {
    float r = keep ? v : 0.0f;
    return d->divide ? r / d->density : r;
}

/* The keep threshold of probability p: ceil(p * 2^24) clamped to [0, 2^24], 0 for NaN (Philox.threshold24). */
static inline int64_t threshold24(double p) {
    return !(p >= 0) ? 0 : (int64_t)fmin(16777216.0, ceil(p * 16777216.0));
}

static void drop_portable(const drop_t *d, int64_t lo, int64_t hi) {
    uint32_t blk[4];
    int64_t last = -1;
    for (int64_t i = lo; i < hi; i++) {
        int64_t g = d->offset + i, c = g >> 2;
        if (c != last) { philox_block((uint32_t)c, (uint32_t)((uint64_t)c >> 32), d->k0, d->k1, blk); last = c; }
        int64_t thr = d->p ? threshold24((double)d->p[i]) : d->thr;
        // keep iff uniform24 < T
        d->x[i] = finish(d, d->x[i], (int64_t)(blk[g & 3] >> 8) < thr);
    }
}

/* hi and lo 32 bits of a * m for 8 lanes (m broadcast). */
MO_AVX2 static inline void mulhilo(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i pe = _mm256_mul_epu32(a, m);
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

/* The draws of tensor indices 4c .. 4c + 31 (c a multiple of 8) under key (k0, k1): 8 Philox blocks,
   transposed into index order, e[q] lane j the draw of 4c + 8q + j. */
MO_AVX2 static void philox32_avx2(int64_t c, uint32_t k0, uint32_t k1, __m256i e[4]) {
    // counters c .. c+7; c is a multiple of 8, so lo32 does not wrap and hi32 is the same for all 8
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i x1 = _mm256_set1_epi32((int)(uint32_t)((uint64_t)c >> 32));
    __m256i x2 = _mm256_setzero_si256(), x3 = _mm256_setzero_si256();
    __m256i m0 = _mm256_set1_epi64x(M0), m1 = _mm256_set1_epi64x(M1);
    for (int r = 0; r < 10; r++) {
        __m256i h0, l0, h1, l1;
        mulhilo(x0, m0, &h0, &l0);
        mulhilo(x2, m1, &h1, &l1);
        __m256i y0 = _mm256_xor_si256(_mm256_xor_si256(h1, x1), _mm256_set1_epi32((int)k0));
        __m256i y2 = _mm256_xor_si256(_mm256_xor_si256(h0, x3), _mm256_set1_epi32((int)k1));
        x0 = y0; x1 = l1; x2 = y2; x3 = l0;
        k0 += W0;
        k1 += W1;
    }
    // lane k of x0..x3 is block c+k; element 4(c+k)+j is xj lane k
    __m256i t0 = _mm256_unpacklo_epi32(x0, x1), t1 = _mm256_unpackhi_epi32(x0, x1);
    __m256i t2 = _mm256_unpacklo_epi32(x2, x3), t3 = _mm256_unpackhi_epi32(x2, x3);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    e[0] = _mm256_permute2x128_si256(u0, u1, 0x20);
    e[1] = _mm256_permute2x128_si256(u2, u3, 0x20);
    e[2] = _mm256_permute2x128_si256(u0, u1, 0x31);
    e[3] = _mm256_permute2x128_si256(u2, u3, 0x31);
}

MO_AVX2 static void u24_x32_avx2(int64_t g, uint32_t k0, uint32_t k1, uint32_t u[32]) {
    __m256i e[4];
    philox32_avx2(g >> 2, k0, k1, e);
    for (int q = 0; q < 4; q++) _mm256_storeu_si256((__m256i *)(u + 8 * q), _mm256_srli_epi32(e[q], 8));
}

void mo_philox_u24_x32(int64_t g, uint32_t k0, uint32_t k1, uint32_t u[32]) {
    if (mo_use_avx2()) { u24_x32_avx2(g, k0, k1, u); return; }
    for (int b = 0; b < 8; b++) {
        int64_t c = (g >> 2) + b;
        uint32_t blk[4];
        philox_block((uint32_t)c, (uint32_t)((uint64_t)c >> 32), k0, k1, blk);
        for (int j = 0; j < 4; j++) u[4 * b + j] = blk[j] >> 8;
    }
}

/* 32 elements from i (offset + i a multiple of 32). */
MO_AVX2 static void drop32_avx2(const drop_t *d, int64_t i) {
    __m256i e[4];
    philox32_avx2((d->offset + i) >> 2, d->k0, d->k1, e);
    __m256i thr = _mm256_set1_epi32((int)d->thr);
    __m256 dens = _mm256_set1_ps(d->density);
    for (int q = 0; q < 4; q++) {
        // keep iff (draw >>> 8) < T (both below 2^24 + 1, so a signed compare is exact)
        __m256i keep = _mm256_cmpgt_epi32(thr, _mm256_srli_epi32(e[q], 8));
        if (d->p) {
            // per element: u < ceil(p * 2^24) in float, exact (u < 2^24; scaling by 2^24 and ceil are exact,
            // an overflow to inf still keeps), false for NaN: the same test as u < threshold24(p)
            __m256 t = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(d->p + i + 8 * q), _mm256_set1_ps(16777216.0f)),
                                       _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
            keep = _mm256_castps_si256(_mm256_cmp_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(e[q], 8)), t, _CMP_LT_OQ));
        }
        float *p = d->x + i + 8 * q;
        __m256 v = _mm256_and_ps(_mm256_loadu_ps(p), _mm256_castsi256_ps(keep));
        if (d->divide) v = _mm256_div_ps(v, dens);
        _mm256_storeu_ps(p, v);
    }
}

MO_AVX2 static void drop_avx2(const drop_t *d, int64_t lo, int64_t hi) {
    int64_t i = lo;
    // the first element whose tensor index is a multiple of 32
    int64_t head = lo + ((32 - ((d->offset + lo) & 31)) & 31);
    if (head > hi) head = hi;
    drop_portable(d, i, head);
    for (i = head; i + 32 <= hi; i += 32) drop32_avx2(d, i);
    drop_portable(d, i, hi);
}

static void drop_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) drop_avx2(c, lo, hi); else drop_portable(c, lo, hi);
}

int32_t mo_drop_rescale(float *x, int64_t n, float density, int64_t key, int32_t mode, int32_t threads) {
    if (mode != MO_RESCALE_NONE && mode != MO_RESCALE_DENSITY && mode != MO_RESCALE_L1) return MO_ERR_ARG;
    if (n <= 0) return MO_OK;
    double before = mode == MO_RESCALE_L1 ? mo_sum_abs(x, n, threads) : 0.0;
    // T = ceil(density * 2^24) in double, clamped to [0, 2^24]
    double dd = (double)density;
    int64_t thr = !(dd >= 0) ? 0 : (int64_t)fmin(16777216.0, ceil(dd * 16777216.0));
    drop_t d = { .x = x, .n = n, .k0 = (uint32_t)key, .k1 = (uint32_t)((uint64_t)key >> 32), .thr = thr,
                 .divide = mode == MO_RESCALE_DENSITY, .density = density };
    mo_parallel_for(n, MO_CHUNK, threads, drop_task, &d);
    if (mode == MO_RESCALE_L1) {
        double after = mo_sum_abs(x, n, threads);
        if (!(before < 1e-7 || after < 1e-7)) {
            // x = (float)(before / after) * x
            mo_scale(x, (float)(before / after), x, n, threads);
        }
    }
    return MO_OK;
}

int32_t mo_drop_at(float *x, int64_t n, int64_t offset, float density, int64_t key, int32_t threads) {
    if (n < 0 || offset < 0 || (n > 0 && !x)) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    drop_t d = { .x = x, .n = n, .k0 = (uint32_t)key, .k1 = (uint32_t)((uint64_t)key >> 32),
                 .thr = threshold24((double)density), .offset = offset };
    mo_parallel_for(n, MO_CHUNK, threads, drop_task, &d);
    return MO_OK;
}

int32_t mo_drop_by_probability(float *x, const float *p, int64_t n, int64_t offset, int64_t key, int32_t threads) {
    if (n < 0 || offset < 0 || (n > 0 && (!x || !p))) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    drop_t d = { .x = x, .n = n, .k0 = (uint32_t)key, .k1 = (uint32_t)((uint64_t)key >> 32), .offset = offset, .p = p };
    mo_parallel_for(n, MO_CHUNK, threads, drop_task, &d);
    return MO_OK;
}
