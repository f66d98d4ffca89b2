/*
 * Reductions in the canonical order of dev.mergeforge.backend.Reductions: blocks of MO_BLOCK
 * consecutive elements, each summed left to right in double from 0.0, then the block sums added
 * left to right. The AVX2 path never reorders a sum: it runs four blocks side by side, one per
 * double lane (a 4x4 transpose feeds lane j the next element of block j), so each lane is exactly
 * the sequential sum of its block.
 */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include "mo_internal.h"

enum { SUM_ABS, SUM_SQUARES, DOT };

typedef struct {
    int kind;
    const float *a, *b;
    int64_t n;
    double *partial;
} reduce_t;

/* The exact sum of one block [lo, hi), sequentially. */
static double block_portable(int kind, const float *a, const float *b, int64_t lo, int64_t hi) {
    double s = 0.0;
    switch (kind) {
        case SUM_ABS: for (int64_t i = lo; i < hi; i++) s += fabs((double)a[i]); break;
        case SUM_SQUARES: for (int64_t i = lo; i < hi; i++) { double v = a[i]; s += v * v; } break;
        default: for (int64_t i = lo; i < hi; i++) s += (double)a[i] * (double)b[i]; break;
    }
    return s;
}

/* The next 4 terms of 4 blocks: r[k] holds element i+k of blocks p[0..3] as 4 doubles, lane j = block j. */
MO_AVX2 static inline void terms4(int kind, const float *const *pa, const float *const *pb, int64_t i, __m256d r[4]) {
    __m128 a0 = _mm_loadu_ps(pa[0] + i), a1 = _mm_loadu_ps(pa[1] + i);
    __m128 a2 = _mm_loadu_ps(pa[2] + i), a3 = _mm_loadu_ps(pa[3] + i);
    _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
    __m256d d[4] = { _mm256_cvtps_pd(a0), _mm256_cvtps_pd(a1), _mm256_cvtps_pd(a2), _mm256_cvtps_pd(a3) };
    if (kind == SUM_ABS) {
        __m256d mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
        for (int k = 0; k < 4; k++) r[k] = _mm256_and_pd(d[k], mask);     // |x| in double
    } else if (kind == SUM_SQUARES) {
        for (int k = 0; k < 4; k++) r[k] = _mm256_mul_pd(d[k], d[k]);     // x*x in double
    } else {
        __m128 b0 = _mm_loadu_ps(pb[0] + i), b1 = _mm_loadu_ps(pb[1] + i);
        __m128 b2 = _mm_loadu_ps(pb[2] + i), b3 = _mm_loadu_ps(pb[3] + i);
        _MM_TRANSPOSE4_PS(b0, b1, b2, b3);
        __m256d e[4] = { _mm256_cvtps_pd(b0), _mm256_cvtps_pd(b1), _mm256_cvtps_pd(b2), _mm256_cvtps_pd(b3) };
        for (int k = 0; k < 4; k++) r[k] = _mm256_mul_pd(d[k], e[k]);     // a*b in double
    }
}

/* Sums 4 full blocks starting at block b0 into out[0..3] (dot: 8 input streams stay within L1 associativity). */
MO_AVX2 static void blocks4_avx2(int kind, const float *a, const float *b, int64_t b0, double *out) {
    const float *pa[4], *pb[4];
    for (int j = 0; j < 4; j++) {
        pa[j] = a + (b0 + j) * MO_BLOCK;
        pb[j] = b ? b + (b0 + j) * MO_BLOCK : NULL;
    }
    __m256d s = _mm256_setzero_pd();
    __m256d r[4];
    for (int64_t i = 0; i < MO_BLOCK; i += 4) {
        terms4(kind, pa, pb, i, r);
        // s += term, element by element in index order
        for (int k = 0; k < 4; k++) s = _mm256_add_pd(s, r[k]);
    }
    _mm256_storeu_pd(out, s);
}

/* Sums 8 full blocks starting at block b0 into out[0..7]: two groups of four lanes, interleaved. */
MO_AVX2 static void blocks8_avx2(int kind, const float *a, const float *b, int64_t b0, double *out) {
    const float *pa0[4], *pa1[4], *pb0[4], *pb1[4];
    for (int j = 0; j < 4; j++) {
        pa0[j] = a + (b0 + j) * MO_BLOCK;
        pa1[j] = a + (b0 + 4 + j) * MO_BLOCK;
        pb0[j] = b ? b + (b0 + j) * MO_BLOCK : NULL;
        pb1[j] = b ? b + (b0 + 4 + j) * MO_BLOCK : NULL;
    }
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256d r0[4], r1[4];
    for (int64_t i = 0; i < MO_BLOCK; i += 4) {
        terms4(kind, pa0, pb0, i, r0);
        terms4(kind, pa1, pb1, i, r1);
        // s += term, element by element in index order
        for (int k = 0; k < 4; k++) {
            s0 = _mm256_add_pd(s0, r0[k]);
            s1 = _mm256_add_pd(s1, r1[k]);
        }
    }
    _mm256_storeu_pd(out, s0);
    _mm256_storeu_pd(out + 4, s1);
}

static void reduce_task(void *ctx, int w, int64_t lo, int64_t hi) {
    reduce_t *r = ctx; (void)w;
    // lo, hi are block indices here
    int64_t blk = lo;
    if (mo_use_avx2()) {
        if (r->kind == DOT) {
            for (; blk + 4 <= hi && (blk + 4) * MO_BLOCK <= r->n; blk += 4) blocks4_avx2(r->kind, r->a, r->b, blk, r->partial + blk);
        } else {
            for (; blk + 8 <= hi && (blk + 8) * MO_BLOCK <= r->n; blk += 8) blocks8_avx2(r->kind, r->a, r->b, blk, r->partial + blk);
        }
    }
    for (; blk < hi; blk++) {
        int64_t s = blk * MO_BLOCK, e = s + MO_BLOCK < r->n ? s + MO_BLOCK : r->n;
        r->partial[blk] = block_portable(r->kind, r->a, r->b, s, e);
    }
}

static double reduce(int kind, const float *a, const float *b, int64_t n, int32_t threads, int *err) {
    if (n <= 0) return 0.0;
    int64_t nb = (n + MO_BLOCK - 1) / MO_BLOCK;
    double stackbuf[64];
    double *partial = nb <= 64 ? stackbuf : malloc((size_t)nb * sizeof(double));
    if (!partial) { if (err) *err = MO_ERR_NOMEM; return NAN; }
    reduce_t r = { .kind = kind, .a = a, .b = b, .n = n, .partial = partial };
    mo_parallel_for(nb, MO_CHUNK / MO_BLOCK, threads, reduce_task, &r);
    // the block sums, left to right
    double s = 0.0;
    for (int64_t k = 0; k < nb; k++) s += partial[k];
    if (partial != stackbuf) free(partial);
    return s;
}

double mo_sum_abs_impl(const float *x, int64_t n, int32_t threads, int *err) { return reduce(SUM_ABS, x, NULL, n, threads, err); }

double mo_sum_abs(const float *x, int64_t n, int32_t threads) { return reduce(SUM_ABS, x, NULL, n, threads, NULL); }

double mo_sum_squares(const float *x, int64_t n, int32_t threads) { return reduce(SUM_SQUARES, x, NULL, n, threads, NULL); }

double mo_dot(const float *a, const float *b, int64_t n, int32_t threads) { return reduce(DOT, a, b, n, threads, NULL); }
