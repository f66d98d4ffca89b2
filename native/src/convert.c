/*
 * dtype conversion: bf16/f16/f32/f64 -> f32 (load) and f32 -> bf16/f16/f32/f64 (store), bit for
 * bit as dev.mergeforge.tensor.Floats: round to nearest even, f16 overflow to infinity, f16
 * subnormals exact. Both paths use integer arithmetic plus one exact float operation, so they agree
 * with each other and with Java on every input; only the NaN payload rule for f16 is chosen by the
 * caller (nan_mode), because Java's depends on whether HotSpot intrinsifies it with F16C.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "mo_internal.h"

/* ---------------------------------------------------------------- scalar rules */

static inline float bf16_to_f32(uint16_t h) { return mo_float((uint32_t)h << 16); }

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x = mo_bits(f);
    // NaN stays a quiet NaN with its sign
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040);
    // add 0x7fff plus the lowest kept bit: ties go to the even neighbour
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

static inline float f16_to_f32(uint16_t h, int quiet) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = h & 0x7c00, m = h & 0x3ff;
    if (e == 0) return mo_float(sign | mo_bits((float)m * 0x1p-24f));                  // zero, subnormal: m * 2^-24
    if (e == 0x7c00) return mo_float(sign | 0x7f800000u | (m << 13) | (quiet && m ? 0x00400000u : 0)); // inf, NaN
    return mo_float(sign | (((uint32_t)(h & 0x7fff) << 13) + 0x38000000u));          // rebias 15 -> 127
}

static inline uint16_t f32_to_f16(float f, int quiet) {
    uint32_t x = mo_bits(f), a = x & 0x7fffffffu, sign = (x >> 16) & 0x8000;
    if (a > 0x7f800000u) {
        if (quiet) return (uint16_t)(sign | 0x7e00 | ((x >> 13) & 0x3ff));
        return (uint16_t)(sign | 0x7c00 | ((x & 0x007fe000u) >> 13) | ((x & 0x1ff0) >> 4) | (x & 0xf));
    }
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);          // >= 65504 + half ulp: infinity
    if (a >= 0x38800000u) {                                          // normal: rebias and round to nearest even
        return (uint16_t)(sign | (((a - 0x38000000u) + 0xfffu + ((a >> 13) & 1)) >> 13));
    }
    // subnormal or zero: |f| + 0.5 rounds |f| to a multiple of 2^-24 (nearest even) in one float add
    return (uint16_t)(sign | (mo_bits(mo_float(a) + 0.5f) - 0x3f000000u));
}

/* ---------------------------------------------------------------- AVX2 rules (8 lanes) */

MO_AVX2 static inline __m256 f16x8_to_f32(__m128i h16, int quiet) {
    __m256i h = _mm256_cvtepu16_epi32(h16);
    __m256i sign = _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x8000)), 16);
    __m256i e = _mm256_and_si256(h, _mm256_set1_epi32(0x7c00)), m = _mm256_and_si256(h, _mm256_set1_epi32(0x3ff));
    __m256i shifted = _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x7fff)), 13);
    __m256i normal = _mm256_add_epi32(shifted, _mm256_set1_epi32(0x38000000));
    __m256i special = _mm256_or_si256(shifted, _mm256_set1_epi32(0x7f800000));
    if (quiet) {
        __m256i isnan = _mm256_xor_si256(_mm256_cmpeq_epi32(m, _mm256_setzero_si256()), _mm256_set1_epi32(-1));
        special = _mm256_or_si256(special, _mm256_and_si256(isnan, _mm256_set1_epi32(0x00400000)));
    }
    __m256i sub = _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(0x1p-24f)));
    __m256i r = _mm256_blendv_epi8(normal, special, _mm256_cmpeq_epi32(e, _mm256_set1_epi32(0x7c00)));
    r = _mm256_blendv_epi8(r, sub, _mm256_cmpeq_epi32(e, _mm256_setzero_si256()));
    return _mm256_castsi256_ps(_mm256_or_si256(r, sign));
}

/* 8 floats -> 8 half bits in the low 16 of each 32-bit lane. */
MO_AVX2 static inline __m256i f32x8_to_f16(__m256 f, int quiet) {
    __m256i x = _mm256_castps_si256(f);
    __m256i a = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
    __m256i sign = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x8000));
    __m256i nan;
    if (quiet) {
        nan = _mm256_or_si256(_mm256_set1_epi32(0x7e00), _mm256_and_si256(_mm256_srli_epi32(x, 13), _mm256_set1_epi32(0x3ff)));
    } else {
        nan = _mm256_or_si256(_mm256_set1_epi32(0x7c00), _mm256_srli_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x007fe000)), 13));
        nan = _mm256_or_si256(nan, _mm256_srli_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x1ff0)), 4));
        nan = _mm256_or_si256(nan, _mm256_and_si256(x, _mm256_set1_epi32(0xf)));
    }
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(a, 13), _mm256_set1_epi32(1));
    __m256i normal = _mm256_add_epi32(_mm256_sub_epi32(a, _mm256_set1_epi32(0x38000000)), _mm256_add_epi32(lsb, _mm256_set1_epi32(0xfff)));
    normal = _mm256_srli_epi32(normal, 13);
    __m256i sub = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(0.5f))), _mm256_set1_epi32(0x3f000000));
    __m256i r = _mm256_blendv_epi8(sub, normal, _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x387fffff)));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7c00), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x477fefff)));
    r = _mm256_blendv_epi8(r, nan, _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000)));
    return _mm256_or_si256(r, sign);
}

MO_AVX2 static inline __m256i f32x8_to_bf16(__m256 f) {
    __m256i x = _mm256_castps_si256(f);
    __m256i a = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    return _mm256_blendv_epi8(r, nan, _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000)));
}

/* Packs two vectors of 8 values below 2^16 into 16 uint16 in order. */
MO_AVX2 static inline void store16(uint16_t *d, __m256i lo, __m256i hi) {
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    _mm256_storeu_si256((__m256i *)d, p);
}

/* ---------------------------------------------------------------- loops */

typedef struct {
    int32_t dtype, nan_mode;
    const void *src;
    void *dst;
} conv_t;

static void load_range(const conv_t *c, int64_t lo, int64_t hi) {
    float *d = c->dst;
    const uint16_t *h = c->src;
    int quiet = c->nan_mode & MO_F16_NAN_QUIET_LOAD;
    switch (c->dtype) {
        case MO_DTYPE_F32: memcpy(d + lo, (const float *)c->src + lo, (size_t)(hi - lo) * 4); break;
        case MO_DTYPE_BF16: for (int64_t i = lo; i < hi; i++) d[i] = bf16_to_f32(h[i]); break;
        case MO_DTYPE_F16: for (int64_t i = lo; i < hi; i++) d[i] = f16_to_f32(h[i], quiet); break;
        default: { const double *s = c->src; for (int64_t i = lo; i < hi; i++) d[i] = (float)s[i]; } break;
    }
}

static void store_range(const conv_t *c, int64_t lo, int64_t hi) {
    const float *s = c->src;
    uint16_t *h = c->dst;
    int quiet = c->nan_mode & MO_F16_NAN_QUIET_STORE;
    switch (c->dtype) {
        case MO_DTYPE_F32: memcpy((float *)c->dst + lo, s + lo, (size_t)(hi - lo) * 4); break;
        case MO_DTYPE_BF16: for (int64_t i = lo; i < hi; i++) h[i] = f32_to_bf16(s[i]); break;
        case MO_DTYPE_F16: for (int64_t i = lo; i < hi; i++) h[i] = f32_to_f16(s[i], quiet); break;
        default: { double *d = c->dst; for (int64_t i = lo; i < hi; i++) d[i] = (double)s[i]; } break;
    }
}

MO_AVX2 static void load_avx2(const conv_t *c, int64_t lo, int64_t hi) {
    float *d = c->dst;
    const uint16_t *h = c->src;
    int quiet = c->nan_mode & MO_F16_NAN_QUIET_LOAD;
    int64_t i = lo;
    if (c->dtype == MO_DTYPE_BF16) {
        for (; i + 8 <= hi; i += 8) {
            __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
            _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
    } else if (c->dtype == MO_DTYPE_F16) {
        for (; i + 8 <= hi; i += 8) _mm256_storeu_ps(d + i, f16x8_to_f32(_mm_loadu_si128((const __m128i *)(h + i)), quiet));
    }
    load_range(c, i, hi);
}

MO_AVX2 static void store_avx2(const conv_t *c, int64_t lo, int64_t hi) {
    const float *s = c->src;
    uint16_t *h = c->dst;
    int quiet = c->nan_mode & MO_F16_NAN_QUIET_STORE;
    int64_t i = lo;
    if (c->dtype == MO_DTYPE_BF16) {
        for (; i + 16 <= hi; i += 16) store16(h + i, f32x8_to_bf16(_mm256_loadu_ps(s + i)), f32x8_to_bf16(_mm256_loadu_ps(s + i + 8)));
    } else if (c->dtype == MO_DTYPE_F16) {
        for (; i + 16 <= hi; i += 16) store16(h + i, f32x8_to_f16(_mm256_loadu_ps(s + i), quiet), f32x8_to_f16(_mm256_loadu_ps(s + i + 8), quiet));
    }
    store_range(c, i, hi);
}

static void load_task(void *ctx, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) load_avx2(ctx, lo, hi); else load_range(ctx, lo, hi);
}

static void store_task(void *ctx, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) store_avx2(ctx, lo, hi); else store_range(ctx, lo, hi);
}

int mo_dtype_size(int32_t d) {
    switch (d) {
        case MO_DTYPE_F32: return 4;
        case MO_DTYPE_F16: case MO_DTYPE_BF16: return 2;
        case MO_DTYPE_F64: return 8;
        default: return 0;
    }
}

static int known_dtype(int32_t d) { return mo_dtype_size(d) != 0; }

void mo_load_run(int32_t dtype, const void *src, float *dst, int64_t m, int32_t nan_mode) {
    conv_t c = { .dtype = dtype, .nan_mode = nan_mode, .src = src, .dst = dst };
    if (mo_use_avx2()) load_avx2(&c, 0, m); else load_range(&c, 0, m);
}

void mo_store_run(int32_t dtype, const float *src, void *dst, int64_t m, int32_t nan_mode) {
    conv_t c = { .dtype = dtype, .nan_mode = nan_mode, .src = src, .dst = dst };
    if (mo_use_avx2()) store_avx2(&c, 0, m); else store_range(&c, 0, m);
}

int32_t mo_load(int32_t dtype, const void *src, float *dst, int64_t n, int32_t nan_mode, int32_t threads) {
    if (!known_dtype(dtype)) return MO_ERR_ARG;
    conv_t c = { .dtype = dtype, .nan_mode = nan_mode, .src = src, .dst = dst };
    mo_parallel_for(n, MO_CHUNK, threads, load_task, &c);
    return MO_OK;
}

/* Nonzero when some d[i], i in [lo, hi), is NaN or +-inf (compiled twice like the loops above). */
static inline __attribute__((always_inline)) uint32_t any_nonfinite(const float *d, int64_t lo, int64_t hi) {
    uint32_t bad = 0;
    for (int64_t i = lo; i < hi; i++) bad |= (mo_bits(d[i]) & 0x7f800000u) == 0x7f800000u;
    return bad;
}
static uint32_t any_nonfinite_portable(const float *d, int64_t lo, int64_t hi) { return any_nonfinite(d, lo, hi); }
MO_AVX2 static uint32_t any_nonfinite_avx2(const float *d, int64_t lo, int64_t hi) { return any_nonfinite(d, lo, hi); }

typedef struct {
    conv_t conv;
    int32_t nonfinite; /* set (atomically) by a task that loaded a NaN or an infinity */
} checked_t;

static void load_checked_task(void *ctx, int w, int64_t lo, int64_t hi) {
    checked_t *c = ctx;
    load_task(&c->conv, w, lo, hi);
    // the range was just written: checking it reads cache-resident data
    uint32_t bad = mo_use_avx2() ? any_nonfinite_avx2(c->conv.dst, lo, hi) : any_nonfinite_portable(c->conv.dst, lo, hi);
    if (bad) __atomic_store_n(&c->nonfinite, 1, __ATOMIC_RELAXED);
}

int32_t mo_load_checked(int32_t dtype, const void *src, float *dst, int64_t n, int32_t nan_mode, int32_t *nonfinite,
                        int32_t threads) {
    if (!known_dtype(dtype) || !nonfinite) return MO_ERR_ARG;
    checked_t c = { .conv = { .dtype = dtype, .nan_mode = nan_mode, .src = src, .dst = dst }, .nonfinite = 0 };
    mo_parallel_for(n, MO_CHUNK, threads, load_checked_task, &c);
    *nonfinite = __atomic_load_n(&c.nonfinite, __ATOMIC_RELAXED);
    return MO_OK;
}

int32_t mo_store(int32_t dtype, const float *src, void *dst, int64_t n, int32_t nan_mode, int32_t threads) {
    if (!known_dtype(dtype)) return MO_ERR_ARG;
    conv_t c = { .dtype = dtype, .nan_mode = nan_mode, .src = src, .dst = dst };
    mo_parallel_for(n, MO_CHUNK, threads, store_task, &c);
    return MO_OK;
}

/* ---------------------------------------------------------------- non-finite scan */

/* Non-finite iff all exponent bits are set: 16-bit (f16, bf16), 32-bit and 64-bit lanes. */
static int64_t first_bad16(const uint16_t *h, int64_t lo, int64_t hi, uint16_t mask) {
    for (int64_t i = lo; i < hi; i++) if ((h[i] & mask) == mask) return i;
    return -1;
}

MO_AVX2 static int64_t first_bad16_avx2(const uint16_t *h, int64_t lo, int64_t hi, uint16_t mask) {
    const __m256i m = _mm256_set1_epi16((short)mask);
    int64_t i = lo;
    for (; i + 64 <= hi; i += 64) {
        // four vectors of 16 halves; a lane is bad iff (x & mask) == mask
        __m256i a = _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)(h + i)), m), m);
        __m256i b = _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)(h + i + 16)), m), m);
        __m256i c = _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)(h + i + 32)), m), m);
        __m256i d = _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)(h + i + 48)), m), m);
        if (!_mm256_testz_si256(_mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)), _mm256_set1_epi8(-1))) {
            return first_bad16(h, i, i + 64, mask);
        }
    }
    return first_bad16(h, i, hi, mask);
}

typedef struct {
    int32_t dtype;
    const void *src;
    int64_t *first; /* per task: lowest bad index in the task, or -1 */
} scan_t;

static int64_t scan_range(const scan_t *c, int64_t lo, int64_t hi) {
    switch (c->dtype) {
        case MO_DTYPE_BF16: case MO_DTYPE_F16: {
            uint16_t mask = c->dtype == MO_DTYPE_BF16 ? 0x7f80 : 0x7c00;
            return mo_use_avx2() ? first_bad16_avx2(c->src, lo, hi, mask) : first_bad16(c->src, lo, hi, mask);
        }
        case MO_DTYPE_F32: {
            const uint32_t *x = c->src;
            for (int64_t i = lo; i < hi; i++) if ((x[i] & 0x7f800000u) == 0x7f800000u) return i;
            return -1;
        }
        default: {
            const uint64_t *x = c->src;
            for (int64_t i = lo; i < hi; i++) if ((x[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull) return i;
            return -1;
        }
    }
}

static void scan_task(void *ctx, int w, int64_t lo, int64_t hi) {
    (void)w;
    scan_t *c = ctx;
    c->first[lo / MO_CHUNK] = scan_range(c, lo, hi);
}

int64_t mo_first_nonfinite(int32_t dtype, const void *src, int64_t n, int32_t threads) {
    if (!known_dtype(dtype) || n < 0) return MO_ERR_ARG;
    if (n == 0) return 0;
    int64_t tasks = (n + MO_CHUNK - 1) / MO_CHUNK;
    int64_t one, *first = tasks == 1 ? &one : malloc((size_t)tasks * sizeof(int64_t));
    if (!first) return MO_ERR_NOMEM;
    scan_t c = { .dtype = dtype, .src = src, .first = first };
    mo_parallel_for(n, MO_CHUNK, threads, scan_task, &c);
    int64_t r = n;
    for (int64_t t = 0; t < tasks && r == n; t++) if (first[t] >= 0) r = first[t];
    if (first != &one) free(first);
    return r;
}
