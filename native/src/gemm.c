/*
 * mo_sgemm_nt: y = x·wᵀ (+ bias) for the calibration forward pass (nn.Linear's layout).
 *
 * Exactness (docs/calibration.md, "Numerics and speed"): every y element is ONE fused
 * multiply-add chain over the inner index in ascending order, started from +0,
 *     s = 0; s = fma(x[t,0], w[o,0], s); ...; s = fma(x[t,in-1], w[o,in-1], s);  y = s (+ bias[o])
 * so the blocked AVX-512 and AVX2 kernels, the portable loop and a Java Math.fma loop give the same
 * bits, for any blocking and any thread count (a partial sum parked in y between k-blocks is a
 * float32, as it is in the register). It agrees with the Java MatMul (unfused multiply, then add, in
 * the same order) to rounding only.
 *
 * Layout (a BLIS-style GEMM, Van Zee & van de Geijn 2015: BLIS, ACM TOMS 41(3)): x is packed
 * once per call into groups of MR tokens, k-major. Parallel tasks own fixed ranges of NC outputs; a
 * task packs KC×NC of w into k-major panels of NR outputs (8×8 transposes), then for each block of
 * MC tokens sweeps its panels, each panel (KC×NR, in L1) against the token groups: an MR×NR tile of
 * accumulators takes one broadcast x value per token and NR/lanes w vectors per k. AVX2: 6×16
 * (12 ymm accumulators); AVX-512: 8×32 (16 zmm accumulators, gemm512.c); KC 256 for both.
 */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "gemm.h"

#define MO_FMA __attribute__((target("avx2,fma")))

/* ---------------------------------------------------------------- portable: the definition */

/* w's element (o, i) in either storage. */
static inline float w_at(const gemm_t *g, int64_t o, int64_t i) { return g->wt ? g->w[i * g->ldw + o] : g->w[o * g->ldw + i]; }

/* y[t, o] for every token, o in [o0, o1): the chain above, one element at a time. */
static void block_portable(const gemm_t *g, int64_t o0, int64_t o1) {
    for (int64_t t = 0; t < g->tokens; t++) {
        const float *xr = g->x + t * g->ldx;
        for (int64_t o = o0; o < o1; o++) {
            float s = 0.0f;
            for (int64_t i = 0; i < g->in; i++) s = fmaf(xr[i], w_at(g, o, i), s);
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
 * Packs w's element (o0 + j, pc + k) for j < rows (≤ nr), k < kc into p[k·nr + j]; columns j ≥ rows
 * are 0. Row-major w: eight rows at a time through 8×8 transposes, the k tail and short row groups
 * element by element; inner-major w (wt): rows of w are already panel rows.
 */
MO_FMA static void pack_panel(const gemm_t *g, int64_t o0, int64_t rows, int64_t pc, int64_t kc, float *p) {
    int64_t nr = g->nr;
    if (g->wt) {
        for (int64_t k = 0; k < kc; k++) {
            memcpy(p + k * nr, g->w + (pc + k) * g->ldw + o0, (size_t)rows * sizeof(float));
            for (int64_t j = rows; j < nr; j++) p[k * nr + j] = 0.0f;
        }
        return;
    }
    for (int64_t h = 0; h < nr; h += 8) {
        int64_t n = rows - h < 8 ? (rows - h > 0 ? rows - h : 0) : 8;
        int64_t k = 0;
        if (n == 8) {
            const float *src = g->w + (o0 + h) * g->ldw + pc;
            for (; k + 8 <= kc; k += 8) {
                __m256 r[8];
                for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(src + j * g->ldw + k);
                transpose8(r);
                for (int j = 0; j < 8; j++) _mm256_store_ps(p + (k + j) * nr + h, r[j]);
            }
        }
        for (; k < kc; k++)
            for (int64_t j = 0; j < 8; j++) p[k * nr + h + j] = j < n ? g->w[(o0 + h + j) * g->ldw + pc + k] : 0.0f;
    }
}

#define KC512 256 /* the AVX-512 inner block: a KC×32 panel is 32 KiB (128, a panel in L1 beside x, measured 4 points slower) */
#define MR2 6     /* the AVX2 tile: tokens */
#define NR2 16    /* the AVX2 tile: outputs, two 8-float vectors */

#define ROW_FMA(r) do { if (m > (r)) { av = _mm256_broadcast_ss(a + k * MR2 + (r)); c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); \
                        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1); } } while (0)
#define ROW_LOAD(r) do { if (m > (r)) { c##r##0 = _mm256_loadu_ps(c + (r) * ldc); c##r##1 = _mm256_loadu_ps(c + (r) * ldc + 8); } } while (0)
#define ROW_BIAS(r) do { c##r##0 = _mm256_add_ps(c##r##0, bb0); c##r##1 = _mm256_add_ps(c##r##1, bb1); } while (0)
#define ROW_STORE(r) do { if (m > (r)) { _mm256_storeu_ps(c + (r) * ldc, c##r##0); _mm256_storeu_ps(c + (r) * ldc + 8, c##r##1); } } while (0)

/*
 * The register tile of m ≤ MR2 tokens (a constant where inlined): c[r·ldc + j] for r < m, j < NR2
 * continues its chain over k < kc with a[k·MR2 + r]·p[k·NR2 + j] (from 0 when first), then adds
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
        __m256 b0 = _mm256_load_ps(p + k * NR2), b1 = _mm256_load_ps(p + k * NR2 + 8), av;
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

/* The variant's register tile at c (ldc), m ≤ mr tokens by nr outputs. */
static void tile_isa(const gemm_t *g, int64_t m, int64_t kc, const float *a, const float *p, float *c, int64_t ldc, int first,
                     const float *bias) {
    if (g->isa == GEMM_AVX512) gemm_tile512(m, kc, a, p, c, ldc, first, bias);
    else tile_m(m, kc, a, p, c, ldc, first, bias);
}

/* A tile of m ≤ mr tokens and n ≤ nr outputs at y[t0, o0]: whole rows of nr in place, a short row through a buffer. */
static void tile_at(const gemm_t *g, int64_t t0, int64_t m, int64_t o0, int64_t n, int64_t pc, int64_t kc,
                    const float *p, int first, int last) {
    float *c = g->y + t0 * g->ldy + o0;
    const float *a = g->xp + pc * g->groups * g->mr + (t0 / g->mr) * g->mr * kc;
    const float *bias = last && g->bias ? g->bias + o0 : NULL;
    if (n == g->nr) {
        tile_isa(g, m, kc, a, p, c, g->ldy, first, bias);
        return;
    }
    _Alignas(64) float buf[GEMM_MAX_MR * GEMM_MAX_NR] = {0}, bb[GEMM_MAX_NR] = {0};
    if (!first)
        for (int64_t r = 0; r < m; r++) memcpy(buf + r * g->nr, c + r * g->ldy, (size_t)n * sizeof(float));
    if (bias) memcpy(bb, bias, (size_t)n * sizeof(float));
    tile_isa(g, m, kc, a, p, buf, g->nr, first, bias ? bb : NULL);
    for (int64_t r = 0; r < m; r++) memcpy(c + r * g->ldy, buf + r * g->nr, (size_t)n * sizeof(float));
}

/* Outputs [o0, o1) (at most GEMM_NC) of every token, on a SIMD variant. */
static void block_simd(const gemm_t *g, float *pack, int64_t o0, int64_t o1) {
    if (g->in == 0) {
        /* the empty chain: y = 0 (+ bias) */
        for (int64_t t = 0; t < g->tokens; t++)
            for (int64_t o = o0; o < o1; o++) g->y[t * g->ldy + o] = g->bias ? 0.0f + g->bias[o] : 0.0f;
        return;
    }
    for (int64_t pc = 0; pc < g->in; pc += g->kc) {
        int64_t kc = g->in - pc < g->kc ? g->in - pc : g->kc;
        int first = pc == 0, last = pc + kc == g->in;
        for (int64_t o = o0; o < o1; o += g->nr) {
            int64_t n = o1 - o < g->nr ? o1 - o : g->nr;
            pack_panel(g, o, n, pc, kc, pack + (o - o0) * kc);
        }
        for (int64_t ic = 0; ic < g->tokens; ic += GEMM_MC) {
            int64_t mc = g->tokens - ic < GEMM_MC ? g->tokens - ic : GEMM_MC;
            for (int64_t o = o0; o < o1; o += g->nr) {
                int64_t n = o1 - o < g->nr ? o1 - o : g->nr;
                const float *p = pack + (o - o0) * kc;
                for (int64_t t = ic; t < ic + mc; t += g->mr) {
                    int64_t m = ic + mc - t < g->mr ? ic + mc - t : g->mr;
                    tile_at(g, t, m, o, n, pc, kc, p, first, last);
                }
            }
        }
    }
}

void gemm_outputs(const gemm_t *g, float *pack, int64_t o0, int64_t o1) {
    if (g->isa == GEMM_PORTABLE) block_portable(g, o0, o1); else block_simd(g, pack, o0, o1);
}

/* Groups [g0, g1) of x into g->xp: block pc, group gi, element (k, r) at pc·groups·mr + gi·mr·kc + k·mr + r. */
static void pack_x_groups(const gemm_t *g, int64_t g0, int64_t g1) {
    int64_t mr = g->mr;
    for (int64_t pc = 0; pc < g->in; pc += g->kc) {
        int64_t kc = g->in - pc < g->kc ? g->in - pc : g->kc;
        for (int64_t gi = g0; gi < g1; gi++) {
            float *dst = g->xp + pc * g->groups * mr + gi * mr * kc;
            for (int64_t r = 0; r < mr; r++) {
                int64_t t = gi * mr + r;
                const float *src = g->x + t * g->ldx + pc;
                if (t < g->tokens) for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = src[k];
                else for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = 0.0f;
            }
        }
    }
}

void gemm_pack_x(const gemm_t *g) {
    if (g->isa != GEMM_PORTABLE) pack_x_groups(g, 0, g->groups);
}

static void pack_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    (void)worker;
    pack_x_groups(ctx, lo, hi);
}

int64_t gemm_xfloats(const gemm_t *g) {
    return g->isa == GEMM_PORTABLE ? 0 : (g->groups * g->mr * g->in + 15) / 16 * 16;
}

void gemm_setup(gemm_t *g, int isa) {
    g->isa = isa;
    g->mr = isa == GEMM_AVX512 ? 8 : MR2;
    g->nr = isa == GEMM_AVX512 ? 32 : NR2;
    g->kc = isa == GEMM_AVX512 ? KC512 : GEMM_MAX_KC;
    g->groups = (g->tokens + g->mr - 1) / g->mr;
}

/* ---------------------------------------------------------------- scratch and dispatch */

/* A fresh allocation per call of megabytes would cost its page faults every time. */
float *gemm_thread_scratch(int64_t floats) { return mo_thread_scratch(MO_SCRATCH_GEMM, floats * (int64_t)sizeof(float)); }

/* Detected once (pthread_once) before the first product; worker threads only read it. */
static pthread_once_t fma_once = PTHREAD_ONCE_INIT;
static int fma_detected;

static void detect_fma(void) {
    __builtin_cpu_init();
    fma_detected = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int gemm_isa(void) {
    pthread_once(&fma_once, detect_fma);
    if (!fma_detected) return GEMM_PORTABLE;
    switch (mo_simd_level()) {
        case MO_SIMD_AVX512: return GEMM_AVX512;
        case MO_SIMD_AVX2: return GEMM_AVX2;
        default: return GEMM_PORTABLE;
    }
}

typedef struct {
    const gemm_t *g;
    float *packs;          /* one GEMM_MAX_KC×GEMM_NC panel buffer per worker */
} sgemm_t;

static void gemm_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    const sgemm_t *s = ctx;
    gemm_outputs(s->g, s->packs + (int64_t)worker * GEMM_MAX_KC * GEMM_NC, lo, hi);
}

int32_t mo_sgemm_nt(const float *x, int64_t tokens, int64_t in, int64_t ldx, const float *w, int64_t out, int64_t ldw,
                    const float *bias, float *y, int64_t ldy, int32_t threads) {
    if (tokens < 0 || in < 0 || out < 0 || ldx < in || ldw < in || ldy < out || !x || !w || !y) return MO_ERR_ARG;
    if (tokens == 0 || out == 0) return MO_OK;
    gemm_t g = { .x = x, .w = w, .bias = bias, .y = y, .tokens = tokens, .in = in, .out = out, .ldx = ldx, .ldw = ldw, .ldy = ldy };
    gemm_setup(&g, gemm_isa());
    sgemm_t s = { .g = &g };
    if (g.isa != GEMM_PORTABLE) {
        int64_t xfloats = gemm_xfloats(&g);
        int workers = mo_workers(out, GEMM_NC, threads);
        float *scratch = gemm_thread_scratch(xfloats + (int64_t)workers * GEMM_MAX_KC * GEMM_NC);
        if (!scratch) return MO_ERR_NOMEM;
        g.xp = scratch;
        s.packs = scratch + xfloats;
        /* x packed on the workers too (a serial pack of a 256×2736 block cost 5% of its product's wall time) */
        mo_parallel_for(g.groups, 8, threads, pack_task, &g);
    }
    mo_parallel_for(out, GEMM_NC, threads, gemm_task, &s);
    return MO_OK;
}
