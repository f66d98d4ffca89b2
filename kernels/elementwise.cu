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
