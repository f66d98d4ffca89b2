/*
 * The GEMM's AVX-512 register tile (gemm.c describes the product and its exactness): 8 tokens by
 * 32 outputs in 16 zmm accumulators, per k one broadcast x value per token and two w vectors. On
 * CPUs that split a 512-bit FMA in two (Zen 4) the flops per cycle are AVX2's, but twice the
 * registers hold a tile with a third fewer loads per FMA and half the instructions.
 * Each output is still one fused chain in ascending k: the same bits as the other variants.
 */
#include <immintrin.h>
#include <string.h>
#include "gemm.h"

#define MO_512 __attribute__((target("avx512f,avx2,fma")))
#define MR 8
#define NR 32

#define ROW_FMA(r) do { if (m > (r)) { av = _mm512_set1_ps(a[k * MR + (r)]); c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0); \
                        c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1); } } while (0)
#define ROW_LOAD(r) do { if (m > (r)) { c##r##0 = _mm512_loadu_ps(c + (r) * ldc); c##r##1 = _mm512_loadu_ps(c + (r) * ldc + 16); } } while (0)
#define ROW_BIAS(r) do { c##r##0 = _mm512_add_ps(c##r##0, bb0); c##r##1 = _mm512_add_ps(c##r##1, bb1); } while (0)
#define ROW_STORE(r) do { if (m > (r)) { _mm512_storeu_ps(c + (r) * ldc, c##r##0); _mm512_storeu_ps(c + (r) * ldc + 16, c##r##1); } } while (0)
#define ROWS(X) X(0); X(1); X(2); X(3); X(4); X(5); X(6); X(7)

/* c[r·ldc + j] for r < m, j < NR continues its chain over k < kc with a[k·MR + r]·p[k·NR + j] (from 0
   when first), then adds bias[j] when given; m is a constant where inlined. */
MO_512 __attribute__((always_inline)) static inline void tile(const int m, int64_t kc, const float *a, const float *p,
                                                              float *c, int64_t ldc, int first, const float *bias) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = _mm512_setzero_ps();
    if (!first) { ROWS(ROW_LOAD); }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(p + k * NR), b1 = _mm512_load_ps(p + k * NR + 16), av;
        ROWS(ROW_FMA);
    }
    if (bias) {
        __m512 bb0 = _mm512_loadu_ps(bias), bb1 = _mm512_loadu_ps(bias + 16);
        ROWS(ROW_BIAS);
    }
    ROWS(ROW_STORE);
}

MO_512 void gemm_tile512(int64_t m, int64_t kc, const float *a, const float *p, float *c, int64_t ldc, int first,
                         const float *bias) {
    switch (m) {
        case 8: tile(8, kc, a, p, c, ldc, first, bias); break;
        case 7: tile(7, kc, a, p, c, ldc, first, bias); break;
        case 6: tile(6, kc, a, p, c, ldc, first, bias); break;
        case 5: tile(5, kc, a, p, c, ldc, first, bias); break;
        case 4: tile(4, kc, a, p, c, ldc, first, bias); break;
        case 3: tile(3, kc, a, p, c, ldc, first, bias); break;
        case 2: tile(2, kc, a, p, c, ldc, first, bias); break;
        default: tile(1, kc, a, p, c, ldc, first, bias); break;
    }
}
