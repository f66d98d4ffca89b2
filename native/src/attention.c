/*
 * mo_attention: one layer's causal attention for a block of tokens (calibration, teacher-forced
 * scoring), both products on the GEMM's kernels and the softmax in between, one task per head and
 * tile of MO_ATTENTION_TILE queries on the worker pool (largest tiles first):
 *     S = q_h·k_hᵀ over the keys the tile sees      (a gemm_t: x = the tile's queries, w = the keys)
 *     P = softmax(cap(S·scale)) over allowed keys    (exact zeros elsewhere)
 *     out_h = P·v_h                                  (a gemm_t whose w is v read inner-major: no transpose)
 *
 * Numerics (docs/calibration.md, "Numerics and speed"): every score and output element is one
 * fused chain in ascending order from +0, as in mo_sgemm_nt. The softmax runs in float32: the max
 * over allowed keys; e = exp(x) for x = s − max by the fixed polynomial of exp_portable below; the
 * sum of e in eight lanes by (j − first) mod 8, each lane in ascending j, the lanes added as
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); p = e·(1/sum). Soft-capping is
 * cap·(float)tanh((double)(s/cap)). The SIMD and portable paths do the same operations, so every
 * path and thread count gives the same bits.
 */
#include <immintrin.h>
#include <math.h>
#include "gemm.h"

#define MO_FMA __attribute__((target("avx2,fma")))
#define TILE MO_ATTENTION_TILE

/* exp(x) ≈ 2^n·e^r, n = rint(x·log2 e), r = x − n·ln 2 (in two parts), e^r by a degree-7 polynomial;
   0 below −87 (the true value is below 2^−125, and a softmax's sum is at least 1). */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_MIN (-87.0f)
static const float EXP_C[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                               5.0000001201e-1f};

static inline float exp_portable(float x) {
    float n = fmaxf(rintf(x * LOG2E), -126.0f);
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = EXP_C[0];
    for (int i = 1; i < 6; i++) p = fmaf(p, r, EXP_C[i]);
    float y = fmaf(p, r * r, r) + 1.0f;
    float two_n = mo_float((uint32_t)((int32_t)n + 127) << 23);
    return x < EXP_MIN ? 0.0f : y * two_n;
}

MO_FMA static inline __m256 exp8(__m256 x) {
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    n = _mm256_max_ps(n, _mm256_set1_ps(-126.0f));   /* as fmaxf: a NaN n becomes −126 (x's NaN stays in r) */
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_C[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C[i]));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256 two_n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    __m256 low = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_MIN), _CMP_LT_OQ);
    return _mm256_andnot_ps(low, _mm256_mul_ps(y, two_n));
}

/* s[j] = cap(s[j]·scale) for j in [first, last]; returns their max (NaN scores are skipped by it). */
static float scale_max_portable(float *s, int64_t first, int64_t last, float scale, float cap) {
    float max = -INFINITY;
    for (int64_t j = first; j <= last; j++) {
        float sc = s[j] * scale;
        if (cap > 0) sc = (float)tanh((double)(sc / cap)) * cap;
        s[j] = sc;
        max = sc > max ? sc : max;
    }
    return max;
}

static float lanes_total(const float l[8]) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

/* Row of scores over keys [0, seen) for the query at pos into probabilities (module comment). */
static void softmax_portable(float *s, int64_t seen, int64_t pos, int64_t window, float scale, float cap) {
    int64_t first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    float max = scale_max_portable(s, first, pos, scale, cap);
    float lane[8] = {0};
    for (int64_t j = first; j <= pos; j++) {
        float e = exp_portable(s[j] - max);
        s[j] = e;
        lane[(j - first) & 7] += e;
    }
    float inv = 1.0f / lanes_total(lane);
    for (int64_t j = 0; j < seen; j++) s[j] = j >= first && j <= pos ? s[j] * inv : 0.0f;
}

MO_FMA static void softmax_avx2(float *s, int64_t seen, int64_t pos, int64_t window, float scale, float cap) {
    int64_t first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0, j;
    float max;
    if (cap > 0) {
        max = scale_max_portable(s, first, pos, scale, cap);
    } else {
        __m256 sv = _mm256_set1_ps(scale), mv = _mm256_set1_ps(-INFINITY);
        for (j = first; j + 8 <= pos + 1; j += 8) {
            __m256 sc = _mm256_mul_ps(_mm256_loadu_ps(s + j), sv);
            _mm256_storeu_ps(s + j, sc);
            mv = _mm256_max_ps(sc, mv);     /* a NaN sc leaves mv, as the portable comparison does */
        }
        float m8[8];
        _mm256_storeu_ps(m8, mv);
        max = scale_max_portable(s, j, pos, scale, cap);
        for (int l = 0; l < 8; l++) max = m8[l] > max ? m8[l] : max;
    }
    __m256 maxv = _mm256_set1_ps(max), acc = _mm256_setzero_ps();
    for (j = first; j + 8 <= pos + 1; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), maxv));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    float lane[8];
    _mm256_storeu_ps(lane, acc);
    for (; j <= pos; j++) {
        float e = exp_portable(s[j] - max);
        s[j] = e;
        lane[(j - first) & 7] += e;
    }
    float invf = 1.0f / lanes_total(lane);
    __m256 inv = _mm256_set1_ps(invf);
    for (j = 0; j < first; j++) s[j] = 0.0f;
    for (j = first; j + 8 <= pos + 1; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
    for (; j <= pos; j++) s[j] = s[j] * invf;
    for (j = pos + 1; j < seen; j++) s[j] = 0.0f;
}

typedef struct {
    const float *q, *k, *v;
    float *out;
    int64_t tokens, ldq, ldkv, pos0, d, window, ldo, keys, tiles, xfloats, per_worker;
    int heads, group, isa;
    float scale, cap;
    float *scratch;
} attn_t;

static void attn_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    const attn_t *a = ctx;
    float *s = a->scratch + (int64_t)worker * a->per_worker, *xp = s + TILE * a->keys, *pack = xp + a->xfloats;
    for (int64_t task = lo; task < hi; task++) {
        int64_t tile = a->tiles - 1 - task / a->heads, head = task % a->heads;
        int64_t t0 = tile * TILE, n = a->tokens - t0 < TILE ? a->tokens - t0 : TILE, seen = a->pos0 + t0 + n;
        int64_t kv = head / a->group * a->d;
        /* s[r, j] = q[t0 + r, head]·k[j, kv head] for the keys j < seen the tile sees */
        gemm_t g = { .x = a->q + t0 * a->ldq + head * a->d, .w = a->k + kv, .y = s, .tokens = n, .in = a->d, .out = seen,
                     .ldx = a->ldq, .ldw = a->ldkv, .ldy = a->keys, .xp = xp };
        gemm_setup(&g, a->isa);
        gemm_pack_x(&g);
        for (int64_t o = 0; o < seen; o += GEMM_NC) gemm_outputs(&g, pack, o, o + GEMM_NC < seen ? o + GEMM_NC : seen);
        for (int64_t r = 0; r < n; r++) {
            if (a->isa == GEMM_PORTABLE) softmax_portable(s + r * a->keys, seen, a->pos0 + t0 + r, a->window, a->scale, a->cap);
            else softmax_avx2(s + r * a->keys, seen, a->pos0 + t0 + r, a->window, a->scale, a->cap);
        }
        /* out[t0 + r, head] = Σ_j p[r, j]·v[j, kv head] */
        gemm_t h = { .x = s, .w = a->v + kv, .wt = 1, .y = a->out + t0 * a->ldo + head * a->d, .tokens = n, .in = seen,
                     .out = a->d, .ldx = a->keys, .ldw = a->ldkv, .ldy = a->ldo, .xp = xp };
        gemm_setup(&h, a->isa);
        gemm_pack_x(&h);
        for (int64_t o = 0; o < a->d; o += GEMM_NC) gemm_outputs(&h, pack, o, o + GEMM_NC < a->d ? o + GEMM_NC : a->d);
    }
}

int32_t mo_attention(const float *q, int64_t tokens, int64_t ldq, const float *k, const float *v, int64_t ldkv, int64_t pos0,
                     int32_t heads, int32_t kv_heads, int64_t head_dim, int64_t window, float scale, float cap, float *out,
                     int64_t ldo, int32_t threads) {
    if (tokens < 0 || pos0 < 0 || heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0 || head_dim <= 0 || window < 0
        || ldq < heads * head_dim || ldkv < kv_heads * head_dim || ldo < heads * head_dim || !q || !k || !v || !out)
        return MO_ERR_ARG;
    if (tokens == 0) return MO_OK;
    int64_t keys = pos0 + tokens, tiles = (tokens + TILE - 1) / TILE, wide = keys > head_dim ? keys : head_dim;
    attn_t a = { .q = q, .k = k, .v = v, .out = out, .tokens = tokens, .ldq = ldq, .ldkv = ldkv, .pos0 = pos0, .d = head_dim,
                 .window = window, .ldo = ldo, .keys = keys, .tiles = tiles, .heads = heads, .group = heads / kv_heads,
                 .isa = gemm_isa(), .scale = scale, .cap = cap };
    /* per worker: the tile's scores, its packed queries or probabilities, one panel buffer */
    a.xfloats = a.isa == GEMM_PORTABLE ? 0 : ((TILE + GEMM_MAX_MR) * wide + 15) / 16 * 16;
    a.per_worker = (TILE * keys + 15) / 16 * 16 + a.xfloats + GEMM_MAX_KC * GEMM_NC;
    int workers = mo_workers(heads * tiles, 1, threads);
    a.scratch = gemm_thread_scratch(a.per_worker * workers);
    if (!a.scratch) return MO_ERR_NOMEM;
    mo_parallel_for(heads * tiles, 1, threads, attn_task, &a);
    return MO_OK;
}
