/*
 * mo_combine_stored: the linear / task-arithmetic program fused into one pass. The unfused path
 * widens every input to a float32 tile, runs sub, weighted sum, scale and add as separate passes
 * over whole tensors and narrows the result: about eight float32 passes over memory. Here each
 * sub-block of SUB elements is widened into small buffers that stay in L1, combined with exactly
 * the same float32 operations in the same order, and narrowed straight into the output bytes.
 * The arithmetic loops are compiled twice (baseline ISA and AVX2) from the same inline kernels.
 */
#include "mo_internal.h"

#define SUB 1024
#define INLINE static inline __attribute__((always_inline))

typedef struct {
    const void *const *srcs;
    const int32_t *dtypes;
    int32_t k;
    const float *w;
    const void *base;
    int32_t base_dtype;
    int32_t task_vectors;
    const float *scales;
    int32_t nscales;
    const float *imp;   /* the relaxation's importance per channel, or NULL */
    float keep;         /* 1 - omega in float32 */
    int32_t axis;
    int64_t cols;
    int64_t offset;
    void *dst;
    int32_t out_dtype;
    int32_t nan_mode;
    int32_t nonfinite; /* set (atomically) when a task saw a NaN or an infinity among the inputs */
} fused_t;

/* t = t - b */
INLINE void sub_kernel(float *t, const float *b, int64_t m) {
    for (int64_t i = 0; i < m; i++) t[i] = t[i] - b[i];
}

/* acc = w * t (first term) or acc = acc + (w * t) */
INLINE void term_kernel(float *acc, const float *t, float w, int first, int64_t m) {
    if (first) {
        for (int64_t i = 0; i < m; i++) acc[i] = w * t[i];
    } else {
        for (int64_t i = 0; i < m; i++) {
            float p = w * t[i];
            acc[i] = acc[i] + p;
        }
    }
}

/* Nonzero when some v[i] is NaN or +-inf (exponent bits all set). */
INLINE uint32_t nonfinite_kernel(const float *v, int64_t m) {
    uint32_t bad = 0;
    for (int64_t i = 0; i < m; i++) bad |= (mo_bits(v[i]) & 0x7f800000u) == 0x7f800000u;
    return bad;
}

/* acc = s * acc */
INLINE void scale_kernel(float *acc, float s, int64_t m) {
    for (int64_t i = 0; i < m; i++) acc[i] = s * acc[i];
}

/* acc = b + acc */
INLINE void add_kernel(float *acc, const float *b, int64_t m) {
    for (int64_t i = 0; i < m; i++) acc[i] = b[i] + acc[i];
}

/* AIM (mo_relax's rule): f = 1 - (keep * imp[c]); acc = acc if f == 1, b if f == 0, else b + ((acc - b) * f),
   for elements g0 .. g0 + m - 1 of the tensor, c their input channel along axis. */
INLINE float relax_one(float a, float bi, float f) {
    float d = a - bi;
    return f == 1.0f ? a : (f == 0.0f ? bi : bi + (d * f));
}

INLINE void relax_kernel(float *acc, const float *b, const float *imp, float keep, int32_t axis, int64_t cols, int64_t g0, int64_t m) {
    if (axis == MO_AXIS_COLUMNS) {
        int64_t c = g0 % cols;
        for (int64_t i = 0; i < m; i++) {
            acc[i] = relax_one(acc[i], b[i], 1.0f - (keep * imp[c]));
            if (++c == cols) c = 0;
        }
    } else if (axis == MO_AXIS_ROWS) {
        int64_t r = g0 / cols, c = g0 % cols;
        for (int64_t i = 0; i < m; i++) {
            acc[i] = relax_one(acc[i], b[i], 1.0f - (keep * imp[r]));
            if (++c == cols) { c = 0; r++; }
        }
    } else {
        for (int64_t i = 0; i < m; i++) acc[i] = relax_one(acc[i], b[i], 1.0f - (keep * imp[g0 + i]));
    }
}

static const void *at(const void *p, int32_t dtype, int64_t i) {
    return (const char *)p + i * mo_dtype_size(dtype);
}

INLINE void combine_range(fused_t *c, int64_t lo, int64_t hi) {
    float b[SUB], t[SUB], acc[SUB];
    uint32_t bad = 0;
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        if (c->base) {
            mo_load_run(c->base_dtype, at(c->base, c->base_dtype, s), b, m, c->nan_mode);
            bad |= nonfinite_kernel(b, m);
        }
        for (int32_t j = 0; j < c->k; j++) {
            mo_load_run(c->dtypes[j], at(c->srcs[j], c->dtypes[j], s), t, m, c->nan_mode);
            bad |= nonfinite_kernel(t, m);
            // t_j = x_j - b (task vector)
            if (c->task_vectors) sub_kernel(t, b, m);
            // acc = w_0 t_0 + w_1 t_1 + ... left to right
            term_kernel(acc, t, c->w[j], j == 0, m);
        }
        for (int32_t q = 0; q < c->nscales; q++) scale_kernel(acc, c->scales[q], m);
        // theta = theta_0 + acc
        if (c->task_vectors) add_kernel(acc, b, m);
        // AIM: theta = theta_0 + (theta - theta_0) * (1 - (1 - omega) * I)
        if (c->imp) relax_kernel(acc, b, c->imp, c->keep, c->axis, c->cols, c->offset + s, m);
        mo_store_run(c->out_dtype, acc, (char *)c->dst + s * mo_dtype_size(c->out_dtype), m, c->nan_mode);
    }
    if (bad) __atomic_store_n((int32_t *)&c->nonfinite, 1, __ATOMIC_RELAXED);
}

static void combine_portable(fused_t *c, int64_t lo, int64_t hi) { combine_range(c, lo, hi); }
MO_AVX2 static void combine_avx2(fused_t *c, int64_t lo, int64_t hi) { combine_range(c, lo, hi); }

static void combine_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) combine_avx2(c, lo, hi); else combine_portable(c, lo, hi);
}

int32_t mo_combine_stored(const void *const *srcs, const int32_t *dtypes, int32_t k, const float *w,
                          const void *base, int32_t base_dtype, int32_t task_vectors, const float *scales, int32_t nscales,
                          const float *imp, int64_t channels, float omega, int32_t axis, int64_t cols, int64_t offset,
                          void *dst, int32_t out_dtype, int64_t n, int32_t nan_mode, int32_t *nonfinite,
                          int32_t threads) {
    if (k < 1 || !srcs || !dtypes || !w || !dst || !nonfinite || nscales < 0 || (nscales > 0 && !scales) || offset < 0) return MO_ERR_ARG;
    if (!mo_dtype_size(out_dtype) || (base && !mo_dtype_size(base_dtype))) return MO_ERR_ARG;
    if ((task_vectors || imp) && !base) return MO_ERR_ARG;
    if (imp) {
        // every element's channel must lie in imp[0, channels)
        if (cols <= 0 || (axis != MO_AXIS_COLUMNS && axis != MO_AXIS_ROWS && axis != MO_AXIS_ELEMENTS)) return MO_ERR_ARG;
        int64_t last = offset + n - 1, need = axis == MO_AXIS_COLUMNS ? (n + offset > cols ? cols : offset % cols + n)
                                              : axis == MO_AXIS_ROWS ? last / cols + 1 : last + 1;
        if (n > 0 && need > channels) return MO_ERR_ARG;
    }
    for (int32_t j = 0; j < k; j++) if (!srcs[j] || !mo_dtype_size(dtypes[j])) return MO_ERR_ARG;
    fused_t c = { .srcs = srcs, .dtypes = dtypes, .k = k, .w = w, .base = base, .base_dtype = base_dtype,
                  .task_vectors = task_vectors, .scales = scales, .nscales = nscales,
                  .imp = imp, .keep = 1.0f - omega, .axis = axis, .cols = cols, .offset = offset,
                  .dst = dst, .out_dtype = out_dtype, .nan_mode = nan_mode, .nonfinite = 0 };
    mo_parallel_for(n, MO_CHUNK, threads, combine_task, &c);
    *nonfinite = __atomic_load_n(&c.nonfinite, __ATOMIC_RELAXED);
    return MO_OK;
}

/* ---------------------------------------------------------------- SCE's variance from stored bytes */

typedef struct {
    const void *const *xs;
    const int32_t *dtypes;
    int32_t k;
    const void *base;
    int32_t base_dtype;
    float *var;
    int32_t nan_mode;
} stored_spread_t;

/* t = float32(x_j) (- b): task vector j of a sub-block, converted again each time it is needed (the
   stored bytes of a sub-block stay in L1, and k float32 buffers would not). */
INLINE void task_run(const stored_spread_t *c, int32_t j, const float *b, float *t, int64_t s, int64_t m) {
    mo_load_run(c->dtypes[j], at(c->xs[j], c->dtypes[j], s), t, m, c->nan_mode);
    if (c->base) sub_kernel(t, b, m);
}

/* mo_delta_variance's loop (combine.c) with each tau_j taken from the stored bytes: the sum left to
   right, mean = inv * sum, then the squares of tau_j - mean added left to right from the first. */
INLINE void stored_variance_range(const stored_spread_t *c, int64_t lo, int64_t hi) {
    float b[SUB], t[SUB], sum[SUB], acc[SUB];
    const float inv = 1.0f / (float)c->k;
    for (int64_t s = lo; s < hi; s += SUB) {
        int64_t m = hi - s < SUB ? hi - s : SUB;
        if (c->base) mo_load_run(c->base_dtype, at(c->base, c->base_dtype, s), b, m, c->nan_mode);
        // sum = tau_0 + tau_1 + ...
        task_run(c, 0, b, sum, s, m);
        for (int32_t j = 1; j < c->k; j++) {
            task_run(c, j, b, t, s, m);
            for (int64_t i = 0; i < m; i++) sum[i] = sum[i] + t[i];
        }
        // mean = (1/k) * sum
        for (int64_t i = 0; i < m; i++) sum[i] = inv * sum[i];
        // var = (tau_0 - mean)^2 + (tau_1 - mean)^2 + ...
        for (int32_t j = 0; j < c->k; j++) {
            task_run(c, j, b, t, s, m);
            if (j == 0) {
                for (int64_t i = 0; i < m; i++) { float d = t[i] - sum[i]; acc[i] = d * d; }
            } else {
                for (int64_t i = 0; i < m; i++) { float d = t[i] - sum[i]; float q = d * d; acc[i] = acc[i] + q; }
            }
        }
        for (int64_t i = 0; i < m; i++) c->var[s + i] = acc[i];
    }
}

static void stored_variance_portable(const stored_spread_t *c, int64_t lo, int64_t hi) { stored_variance_range(c, lo, hi); }
MO_AVX2 static void stored_variance_avx2(const stored_spread_t *c, int64_t lo, int64_t hi) { stored_variance_range(c, lo, hi); }

static void stored_variance_task(void *c, int w, int64_t lo, int64_t hi) {
    (void)w;
    if (mo_use_avx2()) stored_variance_avx2(c, lo, hi); else stored_variance_portable(c, lo, hi);
}

int32_t mo_stored_variance(const void *const *xs, const int32_t *dtypes, int32_t k, const void *base, int32_t base_dtype,
                           float *var, int64_t n, int32_t nan_mode, int32_t threads) {
    if (k < 1 || !xs || !dtypes || !var || n < 0 || (base && !mo_dtype_size(base_dtype))) return MO_ERR_ARG;
    for (int32_t j = 0; j < k; j++) if (!xs[j] || !mo_dtype_size(dtypes[j])) return MO_ERR_ARG;
    stored_spread_t c = { .xs = xs, .dtypes = dtypes, .k = k, .base = base, .base_dtype = base_dtype, .var = var, .nan_mode = nan_mode };
    mo_parallel_for(n, MO_CHUNK, threads, stored_variance_task, &c);
    return MO_OK;
}
