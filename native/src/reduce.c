/*
 * Reductions in the canonical order of dev.mergeforge.backend.Reductions (docs/methods.md, "The
 * canonical reduction order"): blocks of MO_BLOCK consecutive elements; in a block, position p goes
 * to stripe p % 64, each stripe summed in increasing p in double from 0.0; the 64 stripe sums
 * combined by the fixed pairwise tree mo_tree64; the block sums added left to right. The AVX2 path
 * never reorders a sum: a register holds four consecutive stripes, so one 4-float load per register
 * feeds each stripe its next term (a block in two halves of 32 stripes, 8 registers each). The
 * block sums are computed a window of MO_WINDOW blocks at a time into a fixed buffer on the stack
 * and folded into the total in block order, so a reduction allocates nothing (it cannot fail, and
 * its memory does not grow with n).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>
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

/* s[(i + phase) % 64] += term i for i in [lo, hi), in increasing i (phase >= 0). */
static void stripes_portable(int kind, const float *a, const float *b, int64_t lo, int64_t hi, int64_t phase, double *s) {
    int j = (int)((lo + phase) & (MO_STRIPES - 1));
    switch (kind) {
        case SUM_ABS: for (int64_t i = lo; i < hi; i++, j = (j + 1) & (MO_STRIPES - 1)) s[j] += fabs((double)a[i]); break;
        case SUM_SQUARES: for (int64_t i = lo; i < hi; i++, j = (j + 1) & (MO_STRIPES - 1)) { double v = a[i]; s[j] += v * v; } break;
        default: for (int64_t i = lo; i < hi; i++, j = (j + 1) & (MO_STRIPES - 1)) s[j] += (double)a[i] * (double)b[i]; break;
    }
}

/* The terms of a[i..i+3] (b for DOT) as 4 doubles. */
MO_AVX2 static inline __attribute__((always_inline)) __m256d term4(int kind, const float *a, const float *b) {
    __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(a));
    if (kind == SUM_ABS) return _mm256_and_pd(d, _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL)));  // |x| in double
    if (kind == SUM_SQUARES) return _mm256_mul_pd(d, d);                                                     // x*x in double
    return _mm256_mul_pd(d, _mm256_cvtps_pd(_mm_loadu_ps(b)));                                                 // a*b in double
}

/* The 64 stripe sums of one full block at a (b for DOT): register g of half h holds stripes 32h + 4g .. +3.
   Inlined into one copy per kind (block_avx2_kind), so the kind's test leaves the inner loop. */
MO_AVX2 static inline __attribute__((always_inline)) void block_avx2(int kind, const float *a, const float *b, double *s) {
    for (int h = 0; h < 2; h++) {
        __m256d acc[8];
        for (int g = 0; g < 8; g++) acc[g] = _mm256_setzero_pd();
        for (int64_t m = 0; m < MO_BLOCK; m += MO_STRIPES) {
            // row m of the block: each stripe's next term, in index order within the stripe
            const float *pa = a + m + 32 * h, *pb = b ? b + m + 32 * h : NULL;
            for (int g = 0; g < 8; g++) acc[g] = _mm256_add_pd(acc[g], term4(kind, pa + 4 * g, pb ? pb + 4 * g : NULL));
        }
        for (int g = 0; g < 8; g++) _mm256_storeu_pd(s + 32 * h + 4 * g, acc[g]);
    }
}

MO_AVX2 static void block_avx2_abs(const float *a, double *s) { block_avx2(SUM_ABS, a, NULL, s); }
MO_AVX2 static void block_avx2_squares(const float *a, double *s) { block_avx2(SUM_SQUARES, a, NULL, s); }
MO_AVX2 static void block_avx2_dot(const float *a, const float *b, double *s) { block_avx2(DOT, a, b, s); }

/* The canonical sum of the block [lo, hi) (lo at position 0 of its block, hi - lo <= MO_BLOCK). */
static double block_sum(int kind, const float *a, const float *b, int64_t lo, int64_t hi) {
    double s[MO_STRIPES];
    if (hi - lo == MO_BLOCK && mo_use_avx2()) {
        switch (kind) {
            case SUM_ABS: block_avx2_abs(a + lo, s); break;
            case SUM_SQUARES: block_avx2_squares(a + lo, s); break;
            default: block_avx2_dot(a + lo, b + lo, s); break;
        }
    } else {
        memset(s, 0, sizeof s);
        stripes_portable(kind, a, b, lo, hi, -lo & (MO_STRIPES - 1), s);
    }
    return mo_tree64(s);
}

static void reduce_task(void *ctx, int w, int64_t lo, int64_t hi) {
    reduce_t *r = ctx; (void)w;
    // lo, hi are block indices within the window; partial[k] is block k of the window
    for (int64_t blk = lo; blk < hi; blk++) {
        int64_t s = blk * MO_BLOCK, e = s + MO_BLOCK < r->n ? s + MO_BLOCK : r->n;
        r->partial[blk] = block_sum(r->kind, r->a, r->b, s, e);
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

int32_t mo_block_sums(int32_t kind, const float *a, const float *b, int64_t n, int64_t offset, double *open, double *partial,
                      int32_t threads) {
    if (kind < MO_REDUCE_SUM_ABS || kind > MO_REDUCE_DOT || n < 0 || offset < 0) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    if (!a || !open || !partial || (kind == MO_REDUCE_DOT && !b)) return MO_ERR_ARG;
    int k = kind == MO_REDUCE_SUM_ABS ? SUM_ABS : (kind == MO_REDUCE_SUM_SQUARES ? SUM_SQUARES : DOT);
    const float *bb = k == DOT ? b : NULL;
    // the first run: from the chunk's start to the tensor's next block edge, continuing the open stripes
    int64_t first = MO_BLOCK - offset % MO_BLOCK;
    if (first > n) first = n;
    stripes_portable(k, a, bb, 0, first, offset & (MO_STRIPES - 1), open);
    if ((offset + first) % MO_BLOCK == 0) {
        partial[0] = mo_tree64(open);
        memset(open, 0, MO_STRIPES * sizeof(double));
    }
    // then whole blocks of the tensor, each from 0.0, and a last short run left open
    int64_t rest = n - first, full = rest / MO_BLOCK, tail = rest % MO_BLOCK;
    if (full > 0) {
        reduce_t r = { .kind = k, .a = a + first, .b = bb ? bb + first : NULL, .n = full * MO_BLOCK, .partial = partial + 1 };
        mo_parallel_for(full, MO_CHUNK / MO_BLOCK, threads, reduce_task, &r);
    }
    if (tail > 0) stripes_portable(k, a, bb, n - tail, n, -(n - tail) & (MO_STRIPES - 1), open);
    return MO_OK;
}
