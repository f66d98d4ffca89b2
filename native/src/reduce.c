/*
 * Reductions in the canonical order of dev.mergeforge.backend.Reductions: blocks of MO_BLOCK
 * consecutive elements, each summed left to right in double from 0.0, then the block sums added
 * left to right. The AVX2 path never reorders a sum: it runs four blocks side by side, one per
 * double lane (a 4x4 transpose feeds lane j the next element of block j), so each lane is exactly
 * the sequential sum of its block. The block sums are computed a window of MO_WINDOW blocks at a
 * time into a fixed buffer on the stack and folded into the total in block order, so a reduction
 * allocates nothing (it cannot fail, and its memory does not grow with n).
 */
#include <immintrin.h>
#include <math.h>
#include "mo_internal.h"

enum { SUM_ABS, SUM_SQUARES, DOT };

/* Blocks per window: 4096 block sums (32 KiB of stack), 16M elements, 256 parallel tasks. */
#define MO_WINDOW ((int64_t)4096)

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
    // lo, hi are block indices within the window; partial[k] is block k of the window
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

static double reduce(int kind, const float *a, const float *b, int64_t n, int32_t threads) {
    double partial[MO_WINDOW];
    double s = 0.0;
    for (int64_t w0 = 0; w0 < n; w0 += MO_WINDOW * MO_BLOCK) {
        // the window's elements [w0, w0 + wn), as blocks 0..nb-1 of its own
        int64_t wn = n - w0 < MO_WINDOW * MO_BLOCK ? n - w0 : MO_WINDOW * MO_BLOCK;
        int64_t nb = (wn + MO_BLOCK - 1) / MO_BLOCK;
        reduce_t r = { .kind = kind, .a = a + w0, .b = b ? b + w0 : NULL, .n = wn, .partial = partial };
        mo_parallel_for(nb, MO_CHUNK / MO_BLOCK, threads, reduce_task, &r);
        // the block sums, left to right
        for (int64_t k = 0; k < nb; k++) s += partial[k];
    }
    return s;
}

double mo_sum_abs(const float *x, int64_t n, int32_t threads) { return reduce(SUM_ABS, x, NULL, n, threads); }

double mo_sum_squares(const float *x, int64_t n, int32_t threads) { return reduce(SUM_SQUARES, x, NULL, n, threads); }

double mo_dot(const float *a, const float *b, int64_t n, int32_t threads) { return reduce(DOT, a, b, n, threads); }

int32_t mo_block_sums(int32_t kind, const float *a, const float *b, int64_t n, int64_t offset, double start, double *partial,
                      int32_t threads) {
    if (kind < MO_REDUCE_SUM_ABS || kind > MO_REDUCE_DOT || n < 0 || offset < 0) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    if (!a || !partial || (kind == MO_REDUCE_DOT && !b)) return MO_ERR_ARG;
    int k = kind == MO_REDUCE_SUM_ABS ? SUM_ABS : (kind == MO_REDUCE_SUM_SQUARES ? SUM_SQUARES : DOT);
    const float *bb = k == DOT ? b : NULL;
    // the first run: from the chunk's start to the tensor's next block edge, continuing the open sum
    int64_t first = MO_BLOCK - offset % MO_BLOCK;
    if (first > n) first = n;
    double s = start;
    switch (k) {
        case SUM_ABS: for (int64_t i = 0; i < first; i++) s += fabs((double)a[i]); break;
        case SUM_SQUARES: for (int64_t i = 0; i < first; i++) { double v = a[i]; s += v * v; } break;
        default: for (int64_t i = 0; i < first; i++) s += (double)a[i] * (double)bb[i]; break;
    }
    partial[0] = s;
    // the rest: whole blocks of the tensor (the last may be short), each from 0.0
    int64_t rest = n - first;
    if (rest > 0) {
        reduce_t r = { .kind = k, .a = a + first, .b = bb ? bb + first : NULL, .n = rest, .partial = partial + 1 };
        mo_parallel_for((rest + MO_BLOCK - 1) / MO_BLOCK, MO_CHUNK / MO_BLOCK, threads, reduce_task, &r);
    }
    return MO_OK;
}
