// Canonical-order reductions (dev.mergeforge.backend.Reductions): thread b sums block b, i.e.
// elements [b*4096, min(n, (b+1)*4096)), left to right in double from 0.0, into partial[b]. The
// host adds the partials left to right. Each thread reads its block as float4 (blocks start at
// multiples of 4096 floats, so a 16-byte aligned buffer keeps every float4 aligned) and adds the
// four lanes in index order; neighbouring threads read 16 KiB apart, so each warp streams 32 cache
// lines that stay in L1 while they are consumed.
#include "mf_common.cuh"

#define MF_BLOCK 4096LL
#define MF_ABS 0
#define MF_SQUARE 1
#define MF_PRODUCT 2

// The double term of one element: |a|, a*a, or a*c (products of widened floats, rounded once).
template <int KIND>
__device__ __forceinline__ double mf_term(float a, float c) {
    if (KIND == MF_ABS) return fabs((double) a);
    if (KIND == MF_SQUARE) return __dmul_rn((double) a, (double) a);
    return __dmul_rn((double) a, (double) c);
}

// partial[b] = sum of mf_term over block b in index order (y is read only for MF_PRODUCT)
template <int KIND>
__device__ __forceinline__ void mf_block_sums(const float* __restrict__ x, const float* __restrict__ y, long long n,
                                              double* partial, long long nb) {
    MF_FOR(b, nb) {
        long long lo = b * MF_BLOCK, hi = min(n, lo + MF_BLOCK), i = lo;
        double s = 0.0;
        for (; i + 4 <= hi; i += 4) {
            float4 u = *reinterpret_cast<const float4*>(x + i);
            float4 v = KIND == MF_PRODUCT ? *reinterpret_cast<const float4*>(y + i) : u;
            s = __dadd_rn(s, mf_term<KIND>(u.x, v.x));
            s = __dadd_rn(s, mf_term<KIND>(u.y, v.y));
            s = __dadd_rn(s, mf_term<KIND>(u.z, v.z));
            s = __dadd_rn(s, mf_term<KIND>(u.w, v.w));
        }
        for (; i < hi; i++) s = __dadd_rn(s, mf_term<KIND>(x[i], KIND == MF_PRODUCT ? y[i] : 0.0f));
        partial[b] = s;
    }
}

// partial[b] = sum |x[i]| over block b (each |x| widened to double)
extern "C" __global__ void mf_block_sum_abs(const float* __restrict__ x, long long n, double* partial, long long nb) {
    mf_block_sums<MF_ABS>(x, x, n, partial, nb);
}

// partial[b] = sum x[i]^2 over block b (each square in double)
extern "C" __global__ void mf_block_sum_squares(const float* __restrict__ x, long long n, double* partial, long long nb) {
    mf_block_sums<MF_SQUARE>(x, x, n, partial, nb);
}

// partial[b] = sum a[i]*c[i] over block b (each product in double)
extern "C" __global__ void mf_block_dot(const float* __restrict__ a, const float* __restrict__ c, long long n, double* partial, long long nb) {
    mf_block_sums<MF_PRODUCT>(a, c, n, partial, nb);
}
