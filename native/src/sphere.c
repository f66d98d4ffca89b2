/*
 * mo_sphere: multislerp's per-element steps (docs/methods.md, "multislerp") in one sweep. Run as
 * separate ops, a chunked pass swept the chunk once per sub, weighted sum and scale (ten to thirteen
 * sweeps of several megabytes for two models); here each sub-block of SUB elements goes through every
 * step while it is in L1, with the same float32 operations in the same order, so the same bits. The
 * loop bodies are compiled twice (baseline ISA and AVX2) from the same inline kernel.
 */
#include "mo_internal.h"

#define SUB 1024
#define INLINE static inline __attribute__((always_inline))

typedef struct {
    float *const *xs;
    const float *base;
    int32_t k;
    int32_t level;
    const float *mw, *us, *d, *w;
    float ms, c, so, g;
    float *mean, *tangent;
} sphere_t;

INLINE void sphere_kernel(const sphere_t *c, int64_t lo, int64_t hi) {
    float m[SUB], t[SUB];
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t n = hi - s < SUB ? hi - s : SUB;
        const float *b = c->base ? c->base + s : NULL;
        // x_j = x_j - base; m = (mw_0*x_0) + (mw_1*x_1) + ...
        for (int32_t j = 0; j < c->k; j++) {
            float *x = c->xs[j] + s, wj = c->mw[j];
            if (b) for (int64_t i = 0; i < n; i++) x[i] = x[i] - b[i];
            if (j == 0) for (int64_t i = 0; i < n; i++) m[i] = wj * x[i];
            else for (int64_t i = 0; i < n; i++) { float p = wj * x[i]; m[i] = m[i] + p; }
        }
        if (c->level >= MO_SPHERE_UNITS) {
            // m = ms*m; u_j = us_j*x_j
            for (int64_t i = 0; i < n; i++) m[i] = c->ms * m[i];
            for (int32_t j = 0; j < c->k; j++) {
                float *x = c->xs[j] + s, u = c->us[j];
                for (int64_t i = 0; i < n; i++) x[i] = u * x[i];
            }
        }
        if (c->level >= MO_SPHERE_TANGENTS) {
            // t_j = (1*u_j) + ((-d_j)*m); T = (w_0*t_0) + (w_1*t_1) + ...  (1*u is u: u is already a product)
            for (int32_t j = 0; j < c->k; j++) {
                float *x = c->xs[j] + s, nd = -c->d[j], wj = c->w[j];
                for (int64_t i = 0; i < n; i++) { float p = nd * m[i]; x[i] = x[i] + p; }
                if (j == 0) for (int64_t i = 0; i < n; i++) t[i] = wj * x[i];
                else for (int64_t i = 0; i < n; i++) { float p = wj * x[i]; t[i] = t[i] + p; }
            }
            // after the last read of x_0: the tangent tile may be x_0
            float *tg = c->tangent + s;
            for (int64_t i = 0; i < n; i++) tg[i] = t[i];
        }
        if (c->level >= MO_SPHERE_RESULT) {
            // r = c*m; r = (1*r) + (so*T); r = g*r; r = base + r
            for (int64_t i = 0; i < n; i++) {
                float r = c->c * m[i], p = c->so * t[i];
                r = r + p;
                m[i] = c->g * r;
            }
            if (b) for (int64_t i = 0; i < n; i++) m[i] = b[i] + m[i];
        }
        float *out = c->mean + s;
        for (int64_t i = 0; i < n; i++) out[i] = m[i];
    }
}

static void sphere_portable(const sphere_t *c, int64_t lo, int64_t hi) { sphere_kernel(c, lo, hi); }
MO_AVX2 static void sphere_avx2(const sphere_t *c, int64_t lo, int64_t hi) { sphere_kernel(c, lo, hi); }
static void sphere_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) sphere_avx2(c, lo, hi); else sphere_portable(c, lo, hi);
}

int32_t mo_sphere(float *const *xs, const float *base, int32_t k, int32_t level, const float *p, float *mean, float *tangent,
                  int64_t n, int32_t threads) {
    if (k < 1 || !xs || !p || !mean || n < 0 || level < MO_SPHERE_MEAN || level > MO_SPHERE_RESULT) return MO_ERR_ARG;
    if (level >= MO_SPHERE_TANGENTS && !tangent) return MO_ERR_ARG;
    sphere_t c = { .xs = xs, .base = base, .k = k, .level = level, .mw = p, .us = p + k, .d = p + 2 * k, .w = p + 3 * k,
                   .ms = p[4 * k], .c = p[4 * k + 1], .so = p[4 * k + 2], .g = p[4 * k + 3], .mean = mean, .tangent = tangent };
    mo_parallel_for(n, MO_CHUNK, threads, sphere_task, &c);
    return MO_OK;
}
