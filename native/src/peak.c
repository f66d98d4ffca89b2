/*
 * mo_fma_peak, the FMA loop calib-bench times to know what the machine can do: independent FMA
 * chains on the widest vectors the GEMM uses (AVX-512 where its level is in use, else AVX2).
 */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include "gemm.h"

#define MO_FMA __attribute__((target("avx2,fma")))
#define MO_512 __attribute__((target("avx512f,avx2,fma")))

typedef struct {
    int64_t iters;
    int isa;               /* GEMM_* */
    _Alignas(64) float sink[256][16];   /* one row per worker: keeps the chains from being optimised away */
} peak_t;

/* 12 independent 8-lane chains (two FMA pipes × four cycles of latency, with room): iters × 12 FMAs. */
MO_FMA static void peak_avx2(peak_t *p, int worker) {
    __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    /* distinct starting values, so the compiler cannot merge the chains */
    __m256 c0 = _mm256_set1_ps(1.00f), c1 = _mm256_set1_ps(1.01f), c2 = _mm256_set1_ps(1.02f), c3 = _mm256_set1_ps(1.03f),
           c4 = _mm256_set1_ps(1.04f), c5 = _mm256_set1_ps(1.05f), c6 = _mm256_set1_ps(1.06f), c7 = _mm256_set1_ps(1.07f),
           c8 = _mm256_set1_ps(1.08f), c9 = _mm256_set1_ps(1.09f), c10 = _mm256_set1_ps(1.10f), c11 = _mm256_set1_ps(1.11f);
    for (int64_t i = 0; i < p->iters; i++) {
        c0 = _mm256_fmadd_ps(c0, m, a); c1 = _mm256_fmadd_ps(c1, m, a); c2 = _mm256_fmadd_ps(c2, m, a);
        c3 = _mm256_fmadd_ps(c3, m, a); c4 = _mm256_fmadd_ps(c4, m, a); c5 = _mm256_fmadd_ps(c5, m, a);
        c6 = _mm256_fmadd_ps(c6, m, a); c7 = _mm256_fmadd_ps(c7, m, a); c8 = _mm256_fmadd_ps(c8, m, a);
        c9 = _mm256_fmadd_ps(c9, m, a); c10 = _mm256_fmadd_ps(c10, m, a); c11 = _mm256_fmadd_ps(c11, m, a);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    _mm256_store_ps(p->sink[worker & 255], s);
}

/* The same 12 chains on 16-lane vectors: iters × 12 FMAs of 16 lanes. */
MO_512 static void peak_avx512(peak_t *p, int worker) {
    __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(1.00f), c1 = _mm512_set1_ps(1.01f), c2 = _mm512_set1_ps(1.02f), c3 = _mm512_set1_ps(1.03f),
           c4 = _mm512_set1_ps(1.04f), c5 = _mm512_set1_ps(1.05f), c6 = _mm512_set1_ps(1.06f), c7 = _mm512_set1_ps(1.07f),
           c8 = _mm512_set1_ps(1.08f), c9 = _mm512_set1_ps(1.09f), c10 = _mm512_set1_ps(1.10f), c11 = _mm512_set1_ps(1.11f);
    for (int64_t i = 0; i < p->iters; i++) {
        c0 = _mm512_fmadd_ps(c0, m, a); c1 = _mm512_fmadd_ps(c1, m, a); c2 = _mm512_fmadd_ps(c2, m, a);
        c3 = _mm512_fmadd_ps(c3, m, a); c4 = _mm512_fmadd_ps(c4, m, a); c5 = _mm512_fmadd_ps(c5, m, a);
        c6 = _mm512_fmadd_ps(c6, m, a); c7 = _mm512_fmadd_ps(c7, m, a); c8 = _mm512_fmadd_ps(c8, m, a);
        c9 = _mm512_fmadd_ps(c9, m, a); c10 = _mm512_fmadd_ps(c10, m, a); c11 = _mm512_fmadd_ps(c11, m, a);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    _mm512_store_ps(p->sink[worker & 255], s);
}

static void peak_portable(peak_t *p, int worker) {
    float c[12];
    for (int j = 0; j < 12; j++) c[j] = 1.0f + 0.01f * (float)j;
    for (int64_t i = 0; i < p->iters; i++)
        for (int l = 0; l < 8; l++)
            for (int j = 0; j < 12; j++) c[j] = fmaf(c[j], 0.999999f, 1e-7f);
    float s = 0;
    for (int j = 0; j < 12; j++) s += c[j];
    p->sink[worker & 255][0] = s;
}

static void peak_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    peak_t *p = ctx;
    for (int64_t r = lo; r < hi; r++) {
        switch (p->isa) {
            case GEMM_AVX512: peak_avx512(p, worker); break;
            case GEMM_AVX2: peak_avx2(p, worker); break;
            default: peak_portable(p, worker); break;
        }
    }
}

int64_t mo_fma_peak(int64_t iters, int32_t threads) {
    if (iters < 0) return MO_ERR_ARG;
    int workers = mo_workers(threads > 0 ? threads : 1 << 20, 1, threads);
    peak_t *p = aligned_alloc(64, sizeof(peak_t));
    if (!p) return MO_ERR_NOMEM;
    p->iters = iters;
    p->isa = gemm_isa();
    mo_parallel_for(workers, 1, workers, peak_task, p);
    int lanes = p->isa == GEMM_AVX512 ? 16 : 8;
    free(p);
    /* 12 chains × 8 (16) lanes × 2 flops per iteration per worker */
    return (int64_t)workers * iters * 12 * lanes * 2;
}
