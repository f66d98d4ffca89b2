// Canonical-order block sums, GPU-shaped (docs/methods.md, "The canonical reduction order"; the
// Java reference is dev.mergeforge.backend.Reductions). A 4096-element block's position p belongs to
// stripe p % 64; each stripe is summed in increasing p in double from 0.0; the 64 stripe sums are
// combined by the fixed pairwise tree ((s0+s1)+(s2+s3))+... . One warp sums one block: lane t owns
// stripes 2t and 2t+1, so each step the warp reads 64 consecutive floats (256 bytes, coalesced) and
// every stripe gets its next term in order; the tree's first level is lane t's own s[2t] + s[2t+1],
// the other five are __shfl_down_sync by 1, 2, 4, 8, 16 (lane 0 ends with the block's sum). Every
// addition is an explicit __dadd_rn with the left subtree first, so the bits are the CPU's.
#ifndef MF_STRIPES_CUH
#define MF_STRIPES_CUH
#include "mf_common.cuh"

#define MF_SBLOCK 4096LL
#define MF_STRIPES 64

// This lane's two stripes (2*lane, 2*lane + 1) of the block whose position 0 is index b0 (may be
// negative: a block that began before the array), continued by the terms at indices [lo, hi)
// (b0 <= lo, hi <= b0 + 4096), in increasing index. Every lane of the warp runs the same steps.
template <int KIND>
__device__ __forceinline__ void mf_stripes_add(const float* __restrict__ x, const float* __restrict__ y, long long b0,
                                               long long lo, long long hi, int lane, double& s0, double& s1) {
    if (hi <= lo) return;
    for (long long r = (lo - b0) / MF_STRIPES * MF_STRIPES; b0 + r < hi; r += MF_STRIPES) {
        long long i = b0 + r + 2 * lane;
        if (i >= lo && i < hi) s0 = __dadd_rn(s0, mf_term<KIND>(x[i], KIND == MF_PRODUCT ? y[i] : 0.0f));
        if (i + 1 >= lo && i + 1 < hi) s1 = __dadd_rn(s1, mf_term<KIND>(x[i + 1], KIND == MF_PRODUCT ? y[i + 1] : 0.0f));
    }
}

// The pairwise tree over the warp's 64 stripes (lane t holding 2t, 2t+1): lane 0 returns the block
// sum (the other lanes' results are partial). Every lane of the warp must call it (full mask).
__device__ __forceinline__ double mf_stripes_tree(double s0, double s1) {
    double v = __dadd_rn(s0, s1);
    for (int d = 1; d < 32; d *= 2) v = __dadd_rn(v, __shfl_down_sync(0xffffffffu, v, d));
    return v;
}
// The canonical sum of term(k) over k in [0, len) by one thread (Reductions.sum): per block of 4096,
// the 64 stripes (k % 64) summed one after another in double from 0.0, each merged at once into the
// pairwise tree (node[l] holds the pending left subtree of 2^l stripes: the adjacent-pairs tree
// above, built like a binary counter), the block sums added left to right from 0.0.
template <typename Term>
__device__ __forceinline__ double mf_thread_sum(long long len, Term term) {
    double total = 0.0;
    for (long long k0 = 0; k0 < len; k0 += MF_SBLOCK) {
        long long k1 = min(len, k0 + MF_SBLOCK);
        double node[7];
        for (int t = 0; t < MF_STRIPES; t++) {
            double s = 0.0;
            for (long long k = k0 + t; k < k1; k += MF_STRIPES) s = __dadd_rn(s, term(k));
            // stripe t closes a subtree at every level where t has a 1 bit (from the bottom)
            int l = 0;
            for (int c = t; c & 1; c >>= 1, l++) s = __dadd_rn(node[l], s);
            node[l] = s;
        }
        total = __dadd_rn(total, node[6]);
    }
    return total;
}
#endif
