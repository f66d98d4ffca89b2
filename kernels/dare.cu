// DARE random drop: element i is kept iff (Philox-4x32-10 lane (i & 3) of counter i >> 2) >> 8 < thr.
// One thread per counter block of 4 elements, so each Philox block is computed once.
#include "mf_common.cuh"

// x[i] = +0.0 where the 24-bit uniform draw of element i is >= thr (thr = ceil(density * 2^24))
extern "C" __global__ void mf_philox_drop(float* x, long long n, mf_u32 k0, mf_u32 k1, mf_u32 thr) {
    long long groups = (n + 3) >> 2;
    MF_FOR(c, groups) {
        mf_u32 r[4];
        mf_philox((mf_u32) c, (mf_u32) ((unsigned long long) c >> 32), k0, k1, r);
        for (int l = 0; l < 4; l++) {
            long long i = c * 4 + l;
            if (i < n && (r[l] >> 8) >= thr) x[i] = 0.0f;
        }
    }
}
