// Elementwise float32 kernels. Every operation is an explicit round-to-nearest intrinsic, so no
// contraction into FMA can happen whatever the flags (the build also passes -fmad=false).
#include "mf_common.cuh"

// out[i] = a[i] - b[i]
extern "C" __global__ void mf_sub(const float* a, const float* b, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fsub_rn(a[i], b[i]);
}

// out[i] = a[i] + b[i]
extern "C" __global__ void mf_add(const float* a, const float* b, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fadd_rn(a[i], b[i]);
}

// out[i] = s * x[i]
extern "C" __global__ void mf_scale(const float* x, float s, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fmul_rn(s, x[i]);
}

// out[i] = x[i] / d (IEEE division, round to nearest)
extern "C" __global__ void mf_div_scalar(const float* x, float d, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fdiv_rn(x[i], d);
}

// y[i] = y[i] + (alpha * x[i]): the product rounded, then the sum
extern "C" __global__ void mf_axpy(float alpha, const float* x, float* y, long long n) {
    MF_FOR(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
}

// out[i] = (u * a[i]) + (t * b[i]), u = 1 - t computed by the caller in float32
extern "C" __global__ void mf_lerp(const float* a, const float* b, float u, float t, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fadd_rn(__fmul_rn(u, a[i]), __fmul_rn(t, b[i]));
}

// out[i] = ((w0*x0[i]) + (w1*x1[i])) + ... left to right, each product rounded; xs and w hold k entries.
// out may alias xs[0] only (each element is read before it is written, by the same thread).
extern "C" __global__ void mf_weighted_sum(const float* const* xs, const float* w, int k, float* out, long long n) {
    MF_FOR(i, n) {
        float acc = __fmul_rn(w[0], xs[0][i]);
        for (int j = 1; j < k; j++) acc = __fadd_rn(acc, __fmul_rn(w[j], xs[j][i]));
        out[i] = acc;
    }
}

// SCE's spread (docs/methods.md, "sce"): with hasBase, xs[j][i] -= base[i] in place (tau_j);
// mean = (1/k) * (tau_0 + tau_1 + ...) left to right; var[i] = (tau_0 - mean)^2 + (tau_1 - mean)^2 + ...
// left to right, each square rounded. var aliases no input.
extern "C" __global__ void mf_delta_variance(float* const* xs, const float* base, int hasBase, int k, float* var, long long n) {
    float inv = __fdiv_rn(1.0f, (float) k);
    MF_FOR(i, n) {
        float sum = 0.0f;
        for (int j = 0; j < k; j++) {
            float t = xs[j][i];
            if (hasBase) {
                t = __fsub_rn(t, base[i]);
                xs[j][i] = t;
            }
            sum = j == 0 ? t : __fadd_rn(sum, t);
        }
        float mean = __fmul_rn(inv, sum);
        float acc = 0.0f;
        for (int j = 0; j < k; j++) {
            float d = __fsub_rn(xs[j][i], mean);
            float q = __fmul_rn(d, d);
            acc = j == 0 ? q : __fadd_rn(acc, q);
        }
        var[i] = acc;
    }
}

// Multislerp's per-element steps (docs/methods.md, "multislerp"; mo_sphere in native/include/mergeops.h):
// p holds mw[k], us[k], d[k], w[k], then ms, c, so, g. With hasBase, xs[j][i] -= base[i] in place;
// m = (mw0*x0) + ... left to right; from level 1: m = ms*m, x_j = us_j*x_j; from level 2:
// x_j = (1*x_j) + ((-d_j)*m), T = (w0*x0) + ..., tangent[i] = T (tangent may be xs[0]); level 3:
// r = c*m, r = (1*r) + (so*T), r = g*r, r = base + r (with a base). mean[i] = m (or r). mean aliases nothing.
extern "C" __global__ void mf_sphere(float* const* xs, const float* base, int hasBase, int k, int level, const float* p,
                                     float* mean, float* tangent, long long n) {
    MF_FOR(i, n) {
        float m = 0.0f;
        for (int j = 0; j < k; j++) {
            float x = xs[j][i];
            if (hasBase) {
                x = __fsub_rn(x, base[i]);
                xs[j][i] = x;
            }
            float q = __fmul_rn(p[j], x);
            m = j == 0 ? q : __fadd_rn(m, q);
        }
        if (level >= 1) {
            m = __fmul_rn(p[4 * k], m);
            for (int j = 0; j < k; j++) xs[j][i] = __fmul_rn(p[k + j], xs[j][i]);
        }
        float t = 0.0f;
        if (level >= 2) {
            for (int j = 0; j < k; j++) {
                float x = __fadd_rn(__fmul_rn(1.0f, xs[j][i]), __fmul_rn(-p[2 * k + j], m));
                xs[j][i] = x;
                float q = __fmul_rn(p[3 * k + j], x);
                t = j == 0 ? q : __fadd_rn(t, q);
            }
            tangent[i] = t;
        }
        if (level >= 3) {
            float r = __fadd_rn(__fmul_rn(1.0f, __fmul_rn(p[4 * k + 1], m)), __fmul_rn(p[4 * k + 2], t));
            r = __fmul_rn(p[4 * k + 3], r);
            m = hasBase ? __fadd_rn(base[i], r) : r;
        }
        mean[i] = m;
    }
}
