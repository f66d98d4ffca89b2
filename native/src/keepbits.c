/*
 * Keep bits (DELLA's keep decisions carried from its rescale pass to its combine, docs/methods.md):
 * bit i of a little-endian array of 64-bit words stands for element i. mo_nonzero_bits sets it iff
 * the element's float bits are not those of +0.0; mo_keep_bits writes +0.0 where it is clear. Both
 * work on whole words: element i is in word i / 64, bit i % 64; a last partial word's unused bits are
 * written clear and ignored. The AVX2 paths give the portable paths' bits (integer tests only).
 */
#include <immintrin.h>
#include "mo_internal.h"

typedef struct {
    float *x;
    uint64_t *bits;
    int64_t n;
} bits_t;

static uint64_t word_portable(const float *x, int64_t m) {
    uint64_t w = 0;
    for (int64_t j = 0; j < m; j++) w |= (uint64_t)(mo_bits(x[j]) != 0) << j;
    return w;
}

MO_AVX2 static uint64_t word_avx2(const float *x) {
    uint64_t w = 0;
    for (int q = 0; q < 8; q++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + 8 * q));
        // lanes equal to +0.0 (all bits clear) -> all ones; the sign of each lane gathered into 8 bits
        __m256i z = _mm256_cmpeq_epi32(v, _mm256_setzero_si256());
        uint32_t zero = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(z));
        w |= (uint64_t)(~zero & 0xffu) << (8 * q);
    }
    return w;
}

static void nonzero_task(void *c, int worker, int64_t lo, int64_t hi) {
    bits_t *b = c; (void)worker;
    int avx2 = mo_use_avx2();
    for (int64_t k = lo; k < hi; k++) {
        int64_t from = k * 64, m = b->n - from < 64 ? b->n - from : 64;
        b->bits[k] = avx2 && m == 64 ? word_avx2(b->x + from) : word_portable(b->x + from, m);
    }
}

static void keep_portable(float *x, uint64_t w, int64_t m) {
    for (int64_t j = 0; j < m; j++) if (!((w >> j) & 1)) x[j] = 0.0f;
}

MO_AVX2 static void keep_avx2(float *x, uint64_t w) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int q = 0; q < 8; q++) {
        // lane j all ones iff bit 8q + j is set
        __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)((w >> (8 * q)) & 0xff)), sel), sel);
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + 8 * q));
        _mm256_storeu_si256((__m256i *)(x + 8 * q), _mm256_and_si256(v, m));
    }
}

static void keep_task(void *c, int worker, int64_t lo, int64_t hi) {
    bits_t *b = c; (void)worker;
    int avx2 = mo_use_avx2();
    for (int64_t k = lo; k < hi; k++) {
        uint64_t w = b->bits[k];
        if (w == ~(uint64_t)0) continue;   // all 64 kept
        int64_t from = k * 64, m = b->n - from < 64 ? b->n - from : 64;
        if (avx2 && m == 64) keep_avx2(b->x + from, w); else keep_portable(b->x + from, w, m);
    }
}

int32_t mo_nonzero_bits(const float *x, int64_t n, uint64_t *bits, int32_t threads) {
    if (n < 0 || (n > 0 && (!x || !bits))) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    bits_t b = { .x = (float *)x, .bits = bits, .n = n };
    mo_parallel_for((n + 63) / 64, MO_CHUNK / 64, threads, nonzero_task, &b);
    return MO_OK;
}

int32_t mo_keep_bits(float *x, int64_t n, const uint64_t *bits, int32_t threads) {
    if (n < 0 || (n > 0 && (!x || !bits))) return MO_ERR_ARG;
    if (n == 0) return MO_OK;
    bits_t b = { .x = x, .bits = (uint64_t *)bits, .n = n };
    mo_parallel_for((n + 63) / 64, MO_CHUNK / 64, threads, keep_task, &b);
    return MO_OK;
}
