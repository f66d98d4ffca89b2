// Karcher's fused chunk ops (docs/methods.md, "karcher"; the reference loops are KarcherLoops in the
// Java backend): each runs, per element and in the same order, the chain of separate float32 ops the
// method ran before (scale, weighted sum, fill), every product and sum an explicit round-to-nearest
// intrinsic, so no contraction into FMA can happen (the build also passes -fmad=false).
#include "mf_common.cuh"

// units[p][i] = scales[p] * xs[p][i]; u[i] = f * (((w0 * units0[i]) + (w1 * units1[i])) + ...) left to
// right, each product rounded. units[p] may alias xs[p] (read before written, by the same thread); with
// keepUnits 0 the units are not written (units is not read); k >= 1.
extern "C" __global__ void mf_karcher_mean(const float* const* xs, const float* scales, float* const* units, int keepUnits, const float* w,
                                           int k, float f, float* u, long long n) {
    MF_FOR(i, n) {
        float acc = 0.0f;
        for (int p = 0; p < k; p++) {
            float v = __fmul_rn(scales[p], xs[p][i]);
            if (keepUnits) units[p][i] = v;
            float prod = __fmul_rn(w[p], v);
            acc = p == 0 ? prod : __fadd_rn(acc, prod);
        }
        u[i] = __fmul_rn(f, acc);
    }
}

// t[i] = +0.0; then per unit p in order tmp = (one * units[p][i]) + (minusCos[p] * u[i]) and
// t[i] = (one * t[i]) + (coef[p] * tmp). one is the weight 1 of a weighted sum, passed as an argument so
// the product is a real one, as in mf_weighted_sum (it quiets a signalling NaN); k >= 1.
extern "C" __global__ void mf_karcher_tangent(const float* const* units, const float* u, const float* minusCos, const float* coef, int k,
                                              float one, float* t, long long n) {
    MF_FOR(i, n) {
        float ui = u[i], acc = 0.0f;
        for (int p = 0; p < k; p++) {
            float tmp = __fadd_rn(__fmul_rn(one, units[p][i]), __fmul_rn(minusCos[p], ui));
            acc = __fadd_rn(__fmul_rn(one, acc), __fmul_rn(coef[p], tmp));
        }
        t[i] = acc;
    }
}

// mf_karcher_mean (units not kept) then mf_karcher_tangent of the units terms[j] (indices held as floats,
// exact below 2^24) with minusCos[j], coef[j], per element in one thread: only t is written.
extern "C" __global__ void mf_karcher_mean_tangent(const float* const* xs, const float* scales, const float* w, int k, float f,
                                                   const float* terms, const float* minusCos, const float* coef, int nterms, float one,
                                                   float* t, long long n) {
    MF_FOR(i, n) {
        float acc = 0.0f;
        for (int p = 0; p < k; p++) {
            float prod = __fmul_rn(w[p], __fmul_rn(scales[p], xs[p][i]));
            acc = p == 0 ? prod : __fadd_rn(acc, prod);
        }
        float ui = __fmul_rn(f, acc), ti = 0.0f;
        for (int j = 0; j < nterms; j++) {
            int p = (int) terms[j];
            float v = __fmul_rn(scales[p], xs[p][i]);
            float tmp = __fadd_rn(__fmul_rn(one, v), __fmul_rn(minusCos[j], ui));
            ti = __fadd_rn(__fmul_rn(one, ti), __fmul_rn(coef[j], tmp));
        }
        t[i] = ti;
    }
}
