/*
 * Elementwise float32 ops: each operation rounded as written, no FMA (the library builds with
 * -ffp-contract=off and no AVX2 path uses an FMA instruction), so the portable and AVX2 paths give
 * the same bits as JavaBackend. Outputs may alias inputs: every element is read before it is written.
 */
#include <immintrin.h>
#include "mo_internal.h"

typedef struct {
    const float *a, *b;
    float *out;
    float s, t;
} ew_t;

/* ---------------------------------------------------------------- portable */

static void sub_portable(const float *a, const float *b, float *o, int64_t n) {
    for (int64_t i = 0; i < n; i++) o[i] = a[i] - b[i];
}
static void add_portable(const float *a, const float *b, float *o, int64_t n) {
    for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i];
}
static void scale_portable(const float *a, float s, float *o, int64_t n) {
    for (int64_t i = 0; i < n; i++) o[i] = s * a[i];
}
static void axpy_portable(float alpha, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float p = alpha * x[i];
        y[i] = y[i] + p;
    }
}
static void lerp_portable(const float *a, const float *b, float u, float t, float *o, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float p = u * a[i];
        float q = t * b[i];
        o[i] = p + q;
    }
}

/* ---------------------------------------------------------------- AVX2 (8 lanes, then the portable tail) */

MO_AVX2 static void sub_avx2(const float *a, const float *b, float *o, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    sub_portable(a + i, b + i, o + i, n - i);
}
MO_AVX2 static void add_avx2(const float *a, const float *b, float *o, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    add_portable(a + i, b + i, o + i, n - i);
}
MO_AVX2 static void scale_avx2(const float *a, float s, float *o, int64_t n) {
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(vs, _mm256_loadu_ps(a + i)));
    scale_portable(a + i, s, o + i, n - i);
}
MO_AVX2 static void axpy_avx2(float alpha, const float *x, float *y, int64_t n) {
    __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    // y + (alpha * x): the product rounded, then the sum
    for (; i + 8 <= n; i += 8) {
        __m256 p = _mm256_mul_ps(va, _mm256_loadu_ps(x + i));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), p));
    }
    axpy_portable(alpha, x + i, y + i, n - i);
}
MO_AVX2 static void lerp_avx2(const float *a, const float *b, float u, float t, float *o, int64_t n) {
    __m256 vu = _mm256_set1_ps(u), vt = _mm256_set1_ps(t);
    int64_t i = 0;
    // (u * a) + (t * b), u = 1 - t
    for (; i + 8 <= n; i += 8) {
        __m256 p = _mm256_mul_ps(vu, _mm256_loadu_ps(a + i));
        __m256 q = _mm256_mul_ps(vt, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(o + i, _mm256_add_ps(p, q));
    }
    lerp_portable(a + i, b + i, u, t, o + i, n - i);
}

/* ---------------------------------------------------------------- task bodies */

static void sub_task(void *c, int w, int64_t lo, int64_t hi) {
    ew_t *e = c; (void)w;
    if (mo_use_avx2()) sub_avx2(e->a + lo, e->b + lo, e->out + lo, hi - lo);
    else sub_portable(e->a + lo, e->b + lo, e->out + lo, hi - lo);
}
static void add_task(void *c, int w, int64_t lo, int64_t hi) {
    ew_t *e = c; (void)w;
    if (mo_use_avx2()) add_avx2(e->a + lo, e->b + lo, e->out + lo, hi - lo);
    else add_portable(e->a + lo, e->b + lo, e->out + lo, hi - lo);
}
static void scale_task(void *c, int w, int64_t lo, int64_t hi) {
    ew_t *e = c; (void)w;
    if (mo_use_avx2()) scale_avx2(e->a + lo, e->s, e->out + lo, hi - lo);
    else scale_portable(e->a + lo, e->s, e->out + lo, hi - lo);
}
static void axpy_task(void *c, int w, int64_t lo, int64_t hi) {
    ew_t *e = c; (void)w;
    if (mo_use_avx2()) axpy_avx2(e->s, e->a + lo, e->out + lo, hi - lo);
    else axpy_portable(e->s, e->a + lo, e->out + lo, hi - lo);
}
static void lerp_task(void *c, int w, int64_t lo, int64_t hi) {
    ew_t *e = c; (void)w;
    if (mo_use_avx2()) lerp_avx2(e->a + lo, e->b + lo, e->s, e->t, e->out + lo, hi - lo);
    else lerp_portable(e->a + lo, e->b + lo, e->s, e->t, e->out + lo, hi - lo);
}

/* ---------------------------------------------------------------- API */

void mo_sub(const float *a, const float *b, float *out, int64_t n, int32_t threads) {
    ew_t e = { .a = a, .b = b, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, sub_task, &e);
}

void mo_add(const float *a, const float *b, float *out, int64_t n, int32_t threads) {
    ew_t e = { .a = a, .b = b, .out = out };
    mo_parallel_for(n, MO_CHUNK, threads, add_task, &e);
}

void mo_scale(const float *x, float s, float *out, int64_t n, int32_t threads) {
    ew_t e = { .a = x, .out = out, .s = s };
    mo_parallel_for(n, MO_CHUNK, threads, scale_task, &e);
}

void mo_axpy(float alpha, const float *x, float *y, int64_t n, int32_t threads) {
    ew_t e = { .a = x, .out = y, .s = alpha };
    mo_parallel_for(n, MO_CHUNK, threads, axpy_task, &e);
}

void mo_lerp(const float *a, const float *b, float t, float *out, int64_t n, int32_t threads) {
    // 1 - t in float32
    float u = 1.0f - t;
    ew_t e = { .a = a, .b = b, .out = out, .s = u, .t = t };
    mo_parallel_for(n, MO_CHUNK, threads, lerp_task, &e);
}
