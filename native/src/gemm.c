/*
 * mo_sgemm_nt: y = x·wᵀ (+ bias) for the calibration forward pass (nn.Linear's layout), and
 * mo_fma_peak, the FMA loop calib-bench times to know what the machine can do.
 *
 * Exactness (docs/calibration.md, "Numerics and speed"): every y element is ONE fused
 * multiply-add chain over the inner index in ascending order, started from +0,
 *     s = 0; s = fma(x[t,0], w[o,0], s); ...; s = fma(x[t,in-1], w[o,in-1], s);  y = s (+ bias[o])
 * so the blocked AVX2 kernel, the portable loop and a Java Math.fma loop give the same bits, for
 * any blocking and any thread count (a partial sum parked in y between k-blocks is a float32, as
 * it is in the register). It agrees with the Java MatMul (unfused multiply, then add, in the same
 * order) to rounding only.
 *
 * Layout (a BLIS-style GEMM, Van Zee & van de Geijn 2015: BLIS, ACM TOMS 41(3)): x is packed
 * once per call into groups of MR tokens, k-major. Parallel tasks own fixed ranges of NC outputs; a
 * task packs KC×NC of w into k-major panels of NR outputs (8×8 transposes), then for each block of
 * MC tokens sweeps its panels, each panel (KC×NR, in L1) against the token groups: an MR×NR tile of
 * accumulators (12 ymm registers) takes one broadcast x value per token and two w vectors per k.
 */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "mo_internal.h"

#define MR 6      /* tokens per register tile */
#define NR 16     /* outputs per register tile: two 8-float vectors */
#define KC 256    /* inner-index block: a KC×NR panel is 16 KiB, in L1 */
#define MC 96     /* tokens per cache block: MC×KC of x is 96 KiB, in L2 */
#define NC 64     /* outputs per parallel task (a multiple of NR) */

#define MO_FMA __attribute__((target("avx2,fma")))

typedef struct {
    const float *x, *w, *bias;
    float *y;
    int64_t tokens, in, out, ldx, ldw, ldy;
    float *packs;          /* one KC×NC panel buffer per worker */
    float *xp;             /* x packed: per k-block, per group of MR tokens, [kc][MR] (short groups padded with 0) */
    int64_t groups;        /* token groups of MR */
    int fma;               /* the AVX2+FMA path is in use */
} gemm_t;

/* ---------------------------------------------------------------- portable: the definition */

/* y[t, o] for t in [t0, t1), o in [o0, o1): the chain above, one element at a time. */
static void block_portable(const gemm_t *g, int64_t o0, int64_t o1) {
    for (int64_t t = 0; t < g->tokens; t++) {
        const float *xr = g->x + t * g->ldx;
        for (int64_t o = o0; o < o1; o++) {
            const float *wr = g->w + o * g->ldw;
            float s = 0.0f;
            for (int64_t i = 0; i < g->in; i++) s = fmaf(xr[i], wr[i], s);
            g->y[t * g->ldy + o] = g->bias ? s + g->bias[o] : s;
        }
    }
}

/* ---------------------------------------------------------------- AVX2 + FMA */

/* 8×8 transpose: r[j] holds row j (8 consecutive k); afterwards r[k] holds column k (8 rows). */
MO_FMA static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/*
 * Packs w[o0 + j, pc + k] for j < rows (≤ NR), k < kc into p[k·NR + j]; columns j ≥ rows are 0.
 * Eight rows at a time through 8×8 transposes; the k tail and short row groups element by element.
 */
MO_FMA static void pack_panel(const gemm_t *g, int64_t o0, int64_t rows, int64_t pc, int64_t kc, float *p) {
    for (int64_t h = 0; h < NR; h += 8) {
        int64_t n = rows - h < 8 ? (rows - h > 0 ? rows - h : 0) : 8;
        int64_t k = 0;
        if (n == 8) {
            const float *src = g->w + (o0 + h) * g->ldw + pc;
            for (; k + 8 <= kc; k += 8) {
                __m256 r[8];
                for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(src + j * g->ldw + k);
                transpose8(r);
                for (int j = 0; j < 8; j++) _mm256_store_ps(p + (k + j) * NR + h, r[j]);
            }
        }
        for (; k < kc; k++)
            for (int64_t j = 0; j < 8; j++) p[k * NR + h + j] = j < n ? g->w[(o0 + h + j) * g->ldw + pc + k] : 0.0f;
    }
}

#define ROW_FMA(r) do { if (m > (r)) { av = _mm256_broadcast_ss(a + k * MR + (r)); c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); \
                        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1); } } while (0)
#define ROW_LOAD(r) do { if (m > (r)) { c##r##0 = _mm256_loadu_ps(c + (r) * ldc); c##r##1 = _mm256_loadu_ps(c + (r) * ldc + 8); } } while (0)
#define ROW_BIAS(r) do { c##r##0 = _mm256_add_ps(c##r##0, bb0); c##r##1 = _mm256_add_ps(c##r##1, bb1); } while (0)
#define ROW_STORE(r) do { if (m > (r)) { _mm256_storeu_ps(c + (r) * ldc, c##r##0); _mm256_storeu_ps(c + (r) * ldc + 8, c##r##1); } } while (0)

/*
 * The register tile of m ≤ MR tokens (a constant where inlined): c[r·ldc + j] for r < m, j < NR
 * continues its chain over k < kc with a[k·MR + r]·p[k·NR + j] (from 0 when first), then adds
 * bias[j] when bias is given. a is a packed token group, p a packed panel.
 */
MO_FMA __attribute__((always_inline)) static inline void tile(const int m, int64_t kc, const float *a, const float *p,
                                                              float *c, int64_t ldc, int first, const float *bias) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    if (!first) {
        ROW_LOAD(0); ROW_LOAD(1); ROW_LOAD(2); ROW_LOAD(3); ROW_LOAD(4); ROW_LOAD(5);
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(p + k * NR), b1 = _mm256_load_ps(p + k * NR + 8), av;
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
    }
    if (bias) {
        __m256 bb0 = _mm256_loadu_ps(bias), bb1 = _mm256_loadu_ps(bias + 8);
        ROW_BIAS(0); ROW_BIAS(1); ROW_BIAS(2); ROW_BIAS(3); ROW_BIAS(4); ROW_BIAS(5);
    }
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5);
}

/* tile() with m as a constant, so each height compiles to its own straight-line kernel. */
MO_FMA static void tile_m(int64_t m, int64_t kc, const float *a, const float *p, float *c, int64_t ldc, int first,
                          const float *bias) {
    switch (m) {
        case 6: tile(6, kc, a, p, c, ldc, first, bias); break;
        case 5: tile(5, kc, a, p, c, ldc, first, bias); break;
        case 4: tile(4, kc, a, p, c, ldc, first, bias); break;
        case 3: tile(3, kc, a, p, c, ldc, first, bias); break;
        case 2: tile(2, kc, a, p, c, ldc, first, bias); break;
        default: tile(1, kc, a, p, c, ldc, first, bias); break;
    }
}

/* A tile of m ≤ MR tokens and n ≤ NR outputs at y[t0, o0]: whole rows of NR in place, a short row through a buffer. */
MO_FMA static void tile_at(const gemm_t *g, int64_t t0, int64_t m, int64_t o0, int64_t n, int64_t pc, int64_t kc,
                           const float *p, int first, int last) {
    float *c = g->y + t0 * g->ldy + o0;
    const float *a = g->xp + pc * g->groups * MR + (t0 / MR) * MR * kc;
    const float *bias = last && g->bias ? g->bias + o0 : NULL;
    if (n == NR) {
        tile_m(m, kc, a, p, c, g->ldy, first, bias);
        return;
    }
    _Alignas(32) float buf[MR * NR] = {0}, bb[NR] = {0};
    if (!first)
        for (int64_t r = 0; r < m; r++) memcpy(buf + r * NR, c + r * g->ldy, (size_t)n * sizeof(float));
    if (bias) memcpy(bb, bias, (size_t)n * sizeof(float));
    tile_m(m, kc, a, p, buf, NR, first, bias ? bb : NULL);
    for (int64_t r = 0; r < m; r++) memcpy(c + r * g->ldy, buf + r * NR, (size_t)n * sizeof(float));
}

/* Outputs [o0, o1) (at most NC) of every token. */
MO_FMA static void block_avx2(const gemm_t *g, int worker, int64_t o0, int64_t o1) {
    float *pack = g->packs + (int64_t)worker * KC * NC;
    if (g->in == 0) {
        /* the empty chain: y = 0 (+ bias) */
        for (int64_t t = 0; t < g->tokens; t++)
            for (int64_t o = o0; o < o1; o++) g->y[t * g->ldy + o] = g->bias ? 0.0f + g->bias[o] : 0.0f;
        return;
    }
    for (int64_t pc = 0; pc < g->in; pc += KC) {
        int64_t kc = g->in - pc < KC ? g->in - pc : KC;
        int first = pc == 0, last = pc + kc == g->in;
        for (int64_t o = o0; o < o1; o += NR) {
            int64_t n = o1 - o < NR ? o1 - o : NR;
            pack_panel(g, o, n, pc, kc, pack + (o - o0) * kc);
        }
        for (int64_t ic = 0; ic < g->tokens; ic += MC) {
            int64_t mc = g->tokens - ic < MC ? g->tokens - ic : MC;
            for (int64_t o = o0; o < o1; o += NR) {
                int64_t n = o1 - o < NR ? o1 - o : NR;
                const float *p = pack + (o - o0) * kc;
                for (int64_t t = ic; t < ic + mc; t += MR) {
                    int64_t m = ic + mc - t < MR ? ic + mc - t : MR;
                    tile_at(g, t, m, o, n, pc, kc, p, first, last);
                }
            }
        }
    }
}

/* x into g->xp: block pc, group gi, element (k, r) at pc·groups·MR + gi·MR·kc + k·MR + r. */
static void pack_x(const gemm_t *g) {
    for (int64_t pc = 0; pc < g->in; pc += KC) {
        int64_t kc = g->in - pc < KC ? g->in - pc : KC;
        for (int64_t gi = 0; gi < g->groups; gi++) {
            float *dst = g->xp + pc * g->groups * MR + gi * MR * kc;
            for (int64_t r = 0; r < MR; r++) {
                int64_t t = gi * MR + r;
                const float *src = g->x + t * g->ldx + pc;
                if (t < g->tokens) for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = src[k];
                else for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = 0.0f;
            }
        }
    }
}

/*
 * The calling thread's scratch (packed x and the workers' panels), kept between calls: a fresh
 * allocation per call of megabytes costs its page faults every time. Grows to the largest call's
 * need and is freed when the thread exits.
 */
typedef struct { float *p; int64_t floats; } scratch_t;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *v) {
    scratch_t *s = v;
    free(s->p);
    free(s);
}

static void scratch_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

static float *thread_scratch(int64_t floats) {
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok) return NULL;
    scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof(scratch_t));
        if (!s || pthread_setspecific(scratch_key, s) != 0) { free(s); return NULL; }
    }
    if (s->floats < floats) {
        free(s->p);
        s->p = aligned_alloc(64, (size_t)floats * sizeof(float));
        s->floats = s->p ? floats : 0;
    }
    return s->p;
}

/* Detected once (pthread_once) before the first product; worker threads only read it. */
static pthread_once_t fma_once = PTHREAD_ONCE_INIT;
static int fma_detected;

static void detect_fma(void) {
    __builtin_cpu_init();
    fma_detected = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static void gemm_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    const gemm_t *g = ctx;
    if (g->fma) block_avx2(g, worker, lo, hi); else block_portable(g, lo, hi);
}

int32_t mo_sgemm_nt(const float *x, int64_t tokens, int64_t in, int64_t ldx, const float *w, int64_t out, int64_t ldw,
                    const float *bias, float *y, int64_t ldy, int32_t threads) {
    if (tokens < 0 || in < 0 || out < 0 || ldx < in || ldw < in || ldy < out || !x || !w || !y) return MO_ERR_ARG;
    if (tokens == 0 || out == 0) return MO_OK;
    pthread_once(&fma_once, detect_fma);
    gemm_t g = { .x = x, .w = w, .bias = bias, .y = y, .tokens = tokens, .in = in, .out = out,
                 .ldx = ldx, .ldw = ldw, .ldy = ldy, .fma = mo_use_avx2() && fma_detected };
    if (g.fma) {
        g.groups = (tokens + MR - 1) / MR;
        int64_t xfloats = (g.groups * MR * in + 15) / 16 * 16;
        int workers = mo_workers(out, NC, threads);
        float *scratch = thread_scratch(xfloats + (int64_t)workers * KC * NC);
        if (!scratch) return MO_ERR_NOMEM;
        g.xp = scratch;
        g.packs = scratch + xfloats;
        pack_x(&g);
    }
    mo_parallel_for(out, NC, threads, gemm_task, &g);
    return MO_OK;
}

/* ---------------------------------------------------------------- the FMA peak */

typedef struct {
    int64_t iters;
    int fma;
    _Alignas(64) float sink[256][8];   /* one row per worker: keeps the chains from being optimised away */
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
        if (p->fma) peak_avx2(p, worker); else peak_portable(p, worker);
    }
}

int64_t mo_fma_peak(int64_t iters, int32_t threads) {
    if (iters < 0) return MO_ERR_ARG;
    pthread_once(&fma_once, detect_fma);
    int workers = mo_workers(threads > 0 ? threads : 1 << 20, 1, threads);
    peak_t *p = aligned_alloc(64, sizeof(peak_t));
    if (!p) return MO_ERR_NOMEM;
    p->iters = iters;
    p->fma = mo_use_avx2() && fma_detected;
    mo_parallel_for(workers, 1, workers, peak_task, p);
    free(p);
    /* 12 chains × 8 lanes × 2 flops per iteration per worker */
    return (int64_t)workers * iters * 12 * 8 * 2;
}
