// Canonical-order reductions (docs/methods.md, "The canonical reduction order";
// dev.mergeforge.backend.Reductions): partial[b] = the sum of block b, i.e. of the terms of elements
// [b*4096, min(n, (b+1)*4096)) in 64 stripes combined by the pairwise tree (mf_stripes.cuh); the
// host adds the partials left to right. A block of MF_REDUCE_THREADS (64) threads is two warps, and
// each warp sums one canonical block at a time (grid-stride over canonical blocks by warp): every
// step the warp reads 64 consecutive floats (two per lane, coalesced), and the tree runs on warp
// shuffles. The order is the CPU's, so the bits are the Java and native backends'.
#include "mf_stripes.cuh"

#define MF_REDUCE_THREADS 64

// partial[b] = the canonical sum of mf_term over block b (y is read only for MF_PRODUCT)
template <int KIND>
__device__ __forceinline__ void mf_block_sums(const float* __restrict__ x, const float* __restrict__ y, long long n,
                                              double* partial, long long nb) {
    const int lane = threadIdx.x % 32, warps = MF_REDUCE_THREADS / 32;
    for (long long b = (long long) blockIdx.x * warps + threadIdx.x / 32; b < nb; b += (long long) gridDim.x * warps) {
        double s0 = 0.0, s1 = 0.0;
        long long lo = b * MF_SBLOCK;
        mf_stripes_add<KIND>(x, y, lo, lo, min(n, lo + MF_SBLOCK), lane, s0, s1);
        double s = mf_stripes_tree(s0, s1);
        if (lane == 0) partial[b] = s;
    }
}

// partial[b] = sum |x[i]| over block b (each |x| widened to double)
extern "C" __global__ void __launch_bounds__(MF_REDUCE_THREADS) mf_block_sum_abs(const float* __restrict__ x, long long n,
                                                                                 double* partial, long long nb) {
    mf_block_sums<MF_ABS>(x, x, n, partial, nb);
}

// partial[b] = sum x[i]^2 over block b (each square in double)
extern "C" __global__ void __launch_bounds__(MF_REDUCE_THREADS) mf_block_sum_squares(const float* __restrict__ x, long long n,
                                                                                     double* partial, long long nb) {
    mf_block_sums<MF_SQUARE>(x, x, n, partial, nb);
}

// partial[b] = sum a[i]*c[i] over block b (each product in double)
extern "C" __global__ void __launch_bounds__(MF_REDUCE_THREADS) mf_block_dot(const float* __restrict__ a, const float* __restrict__ c,
                                                                             long long n, double* partial, long long nb) {
    mf_block_sums<MF_PRODUCT>(a, c, n, partial, nb);
}
