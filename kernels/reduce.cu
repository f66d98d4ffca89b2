// Canonical-order reductions (dev.mergeforge.backend.Reductions): partial[b] = the sum of block b,
// i.e. elements [b*4096, min(n, (b+1)*4096)), left to right in double from 0.0; the host adds the
// partials left to right. A block of MF_ROWS (64) threads takes 64 consecutive canonical blocks
// (grid-stride over groups of 64) and reads them through mf_row_sum (kernels/mf_rows.cuh):
// coalesced 128-byte loads staged in shared memory, then one thread per canonical block sums it
// in index order. The order is the CPU's, so the bits are the Java and native backends'.
#include "mf_rows.cuh"

#define MF_BLOCK 4096LL

// partial[b] = sum of mf_term over block b in index order (y is read only for MF_PRODUCT)
template <int KIND>
__device__ __forceinline__ void mf_block_sums(const float* __restrict__ x, const float* __restrict__ y, long long n,
                                              double* partial, long long nb) {
    for (long long b0 = (long long) blockIdx.x * MF_ROWS; b0 < nb; b0 += (long long) gridDim.x * MF_ROWS) {
        double s = mf_row_sum<KIND>(x, y, b0, MF_BLOCK, n);
        long long b = b0 + threadIdx.x;
        if (b < nb) partial[b] = s;
    }
}

// partial[b] = sum |x[i]| over block b (each |x| widened to double)
extern "C" __global__ void __launch_bounds__(MF_ROWS) mf_block_sum_abs(const float* __restrict__ x, long long n, double* partial,
                                                                       long long nb) {
    mf_block_sums<MF_ABS>(x, x, n, partial, nb);
}

// partial[b] = sum x[i]^2 over block b (each square in double)
extern "C" __global__ void __launch_bounds__(MF_ROWS) mf_block_sum_squares(const float* __restrict__ x, long long n,
                                                                           double* partial, long long nb) {
    mf_block_sums<MF_SQUARE>(x, x, n, partial, nb);
}

// partial[b] = sum a[i]*c[i] over block b (each product in double)
extern "C" __global__ void __launch_bounds__(MF_ROWS) mf_block_dot(const float* __restrict__ a, const float* __restrict__ c,
                                                                   long long n, double* partial, long long nb) {
    mf_block_sums<MF_PRODUCT>(a, c, n, partial, nb);
}
