// Canonical-order reductions (dev.mergeforge.backend.Reductions): thread b sums block b, i.e.
// elements [b*4096, min(n, (b+1)*4096)), left to right in double from 0.0, into partial[b]. The
// host adds the partials left to right. Neighbouring threads read addresses 16 KiB apart, so each
// warp streams 32 cache lines that stay in L1 while their 32 floats are consumed.
#include "mf_common.cuh"

#define MF_BLOCK 4096LL

// partial[b] = sum |x[i]| over block b (each |x| widened to double)
extern "C" __global__ void mf_block_sum_abs(const float* __restrict__ x, long long n, double* partial, long long nb) {
    MF_FOR(b, nb) {
        long long lo = b * MF_BLOCK, hi = min(n, lo + MF_BLOCK);
        double s = 0.0;
        for (long long i = lo; i < hi; i++) s = __dadd_rn(s, fabs((double) x[i]));
        partial[b] = s;
    }
}

// partial[b] = sum x[i]^2 over block b (each square in double)
extern "C" __global__ void mf_block_sum_squares(const float* __restrict__ x, long long n, double* partial, long long nb) {
    MF_FOR(b, nb) {
        long long lo = b * MF_BLOCK, hi = min(n, lo + MF_BLOCK);
        double s = 0.0;
        for (long long i = lo; i < hi; i++) {
            double v = (double) x[i];
            s = __dadd_rn(s, __dmul_rn(v, v));
        }
        partial[b] = s;
    }
}

// partial[b] = sum a[i]*b[i] over block b (each product in double)
extern "C" __global__ void mf_block_dot(const float* __restrict__ a, const float* __restrict__ c, long long n, double* partial, long long nb) {
    MF_FOR(b, nb) {
        long long lo = b * MF_BLOCK, hi = min(n, lo + MF_BLOCK);
        double s = 0.0;
        for (long long i = lo; i < hi; i++) s = __dadd_rn(s, __dmul_rn((double) a[i], (double) c[i]));
        partial[b] = s;
    }
}
