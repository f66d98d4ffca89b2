/*
 * mo_sgemm_nt: y = x·wᵀ (+ bias) for the calibration forward pass (nn.Linear's layout).
 * Not part of the Backend contract: it sums each dot product in 8 lanes with fused
 * multiply-adds (AVX2+FMA) and then across the lanes, so it agrees with the Java MatMul to
 * rounding, not bit for bit. The portable path is a plain loop in the same lane order.
 */
#include <immintrin.h>
#include <pthread.h>
#include "mo_internal.h"

typedef struct {
    const float *x, *w, *bias;
    float *y;
    int64_t tokens, in, ldy;
} gemm_t;

/* One dot product in the lane order of the AVX2 path: lane l sums i ≡ l (mod 8), then lanes 0..7, then the tail. */
static float dot_portable(const float *a, const float *b, int64_t n) {
    float lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) for (int l = 0; l < 8; l++) lane[l] = __builtin_fmaf(a[i + l], b[i + l], lane[l]);
    /* the AVX2 horizontal sum's order: (l0+l4)+(l2+l6) and (l1+l5)+(l3+l7), then those two */
    float t0 = (lane[0] + lane[4]) + (lane[2] + lane[6]), t1 = (lane[1] + lane[5]) + (lane[3] + lane[7]);
    float s = t1 + t0;
    for (; i < n; i++) s = __builtin_fmaf(a[i], b[i], s);
    return s;
}

__attribute__((target("avx2,fma"))) static inline float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);                       /* lanes (0+4, 1+5, 2+6, 3+7) */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));       /* (0+4)+(2+6), (1+5)+(3+7) */
    return _mm_cvtss_f32(_mm_add_ss(_mm_shuffle_ps(t, t, 1), t) );
}

/* Two tokens against four output rows: eight accumulators, each w row loaded once per 8 inputs. */
__attribute__((target("avx2,fma"))) static void block_avx2(const gemm_t *g, int64_t o0, int64_t o1) {
    const int64_t in = g->in, n8 = in / 8 * 8;
    for (int64_t t = 0; t < g->tokens; t += 2) {
        const int two = t + 1 < g->tokens;
        const float *x0 = g->x + t * in, *x1 = g->x + (t + two) * in;
        int64_t o = o0;
        for (; o + 4 <= o1; o += 4) {
            const float *w0 = g->w + o * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            for (int64_t i = 0; i < n8; i += 8) {
                __m256 v0 = _mm256_loadu_ps(x0 + i), v1 = _mm256_loadu_ps(x1 + i), u;
                u = _mm256_loadu_ps(w0 + i); a00 = _mm256_fmadd_ps(v0, u, a00); a10 = _mm256_fmadd_ps(v1, u, a10);
                u = _mm256_loadu_ps(w1 + i); a01 = _mm256_fmadd_ps(v0, u, a01); a11 = _mm256_fmadd_ps(v1, u, a11);
                u = _mm256_loadu_ps(w2 + i); a02 = _mm256_fmadd_ps(v0, u, a02); a12 = _mm256_fmadd_ps(v1, u, a12);
                u = _mm256_loadu_ps(w3 + i); a03 = _mm256_fmadd_ps(v0, u, a03); a13 = _mm256_fmadd_ps(v1, u, a13);
            }
            float r[2][4] = {{hsum(a00), hsum(a01), hsum(a02), hsum(a03)}, {hsum(a10), hsum(a11), hsum(a12), hsum(a13)}};
            const float *ws[4] = {w0, w1, w2, w3};
            for (int k = 0; k < 4; k++) {
                for (int64_t i = n8; i < in; i++) { r[0][k] = __builtin_fmaf(x0[i], ws[k][i], r[0][k]); r[1][k] = __builtin_fmaf(x1[i], ws[k][i], r[1][k]); }
                float b = g->bias ? g->bias[o + k] : 0.0f;
                g->y[t * g->ldy + o + k] = r[0][k] + b;
                if (two) g->y[(t + 1) * g->ldy + o + k] = r[1][k] + b;
            }
        }
        for (; o < o1; o++) {
            float b = g->bias ? g->bias[o] : 0.0f;
            g->y[t * g->ldy + o] = dot_portable(x0, g->w + o * in, in) + b;
            if (two) g->y[(t + 1) * g->ldy + o] = dot_portable(x1, g->w + o * in, in) + b;
        }
    }
}

static void block_portable(const gemm_t *g, int64_t o0, int64_t o1) {
    for (int64_t t = 0; t < g->tokens; t++)
        for (int64_t o = o0; o < o1; o++)
            g->y[t * g->ldy + o] = dot_portable(g->x + t * g->in, g->w + o * g->in, g->in) + (g->bias ? g->bias[o] : 0.0f);
}

/* Detected once (pthread_once) before the first product; worker threads only read it. */
static pthread_once_t fma_once = PTHREAD_ONCE_INIT;
static int fma_detected;

static void detect_fma(void) {
    __builtin_cpu_init();
    fma_detected = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static void gemm_task(void *ctx, int worker, int64_t lo, int64_t hi) {
    (void)worker;
    const gemm_t *g = ctx;
    if (mo_use_avx2() && fma_detected) block_avx2(g, lo, hi); else block_portable(g, lo, hi);
}

int32_t mo_sgemm_nt(const float *x, int64_t tokens, int64_t in, const float *w, int64_t out, const float *bias,
                    float *y, int64_t ldy, int32_t threads) {
    if (tokens < 0 || in < 0 || out < 0 || ldy < out || !x || !w || !y) return MO_ERR_ARG;
    pthread_once(&fma_once, detect_fma);
    gemm_t g = { .x = x, .w = w, .bias = bias, .y = y, .tokens = tokens, .in = in, .ldy = ldy };
    mo_parallel_for(out, 16, threads, gemm_task, &g);
    return MO_OK;
}
