// Magnitude-rank selection without sorting (keepRankRange). |x| bits order like |x| for finite
// floats, so the value at a descending rank is found by a most-significant-digit radix select over
// 31 bits in 3 passes (11, 10, 10 bits): each pass histograms the digit of the elements whose
// higher digits equal the prefix chosen so far; the host walks the histogram from the top.
// Ties at a boundary are resolved by lower flat index first, which needs each equal element's
// ordered rank: per-chunk counts (mf_eq_count), an exclusive prefix over chunks (host), then a
// ballot/popc scan inside each chunk (mf_keep_rank_mask). Both chunk kernels need blockDim.x = 256
// (their __launch_bounds__; Kernel.block makes every launch use it).
#include "mf_common.cuh"

#define MF_HIST_BINS 2048
#define MF_CHUNK 4096
#define MF_CHUNK_THREADS 256
#define MF_CHUNK_ROWS (MF_CHUNK / MF_CHUNK_THREADS)

__device__ __forceinline__ mf_u32 mf_abs_bits(float v) { return __float_as_uint(v) & 0x7fffffffu; }

// hist[t*2048 + d] += #{i : (|x_i| >> (shift+bits)) == prefix_t, digit d = (|x_i| >> shift) & (2^bits-1)}
// for targets t < ntargets (1 or 2); shift + bits <= 31, bits <= 11. hist is zeroed by the caller.
extern "C" __global__ void mf_radix_hist(const float* __restrict__ x, long long n, int shift, int bits,
                                         mf_u32 prefix0, mf_u32 prefix1, int ntargets, unsigned long long* hist) {
    MF_SHARED(unsigned int, h, 2 * MF_HIST_BINS);
    for (int j = threadIdx.x; j < 2 * MF_HIST_BINS; j += blockDim.x) h[j] = 0;
    __syncthreads();
    int top = shift + bits;
    mf_u32 mask = (1u << bits) - 1u;
    MF_FOR(i, n) {
        mf_u32 a = mf_abs_bits(x[i]);
        mf_u32 hi = a >> top;  // top <= 31: a has bit 31 clear, so a >> 31 == 0
        mf_u32 d = (a >> shift) & mask;
        if (hi == prefix0) atomicAdd(&h[d], 1u);
        if (ntargets > 1 && hi == prefix1) atomicAdd(&h[MF_HIST_BINS + d], 1u);
    }
    __syncthreads();
    for (int j = threadIdx.x; j < ntargets * MF_HIST_BINS; j += blockDim.x) {
        if (h[j] != 0) atomicAdd(&hist[j], (unsigned long long) h[j]);
    }
}

// cntUp[c], cntDn[c] = how many |x_i| in chunk c (4096 elements) equal vUp (only if hasUpper) and vDn
extern "C" __global__ void __launch_bounds__(MF_CHUNK_THREADS) mf_eq_count(const float* __restrict__ x, long long n, mf_u32 vUp, int hasUpper,
                                       mf_u32 vDn, long long* cntUp, long long* cntDn) {
    MF_SHARED_VAR(unsigned int, su);
    MF_SHARED_VAR(unsigned int, sd);
    if (threadIdx.x == 0) { su = 0; sd = 0; }
    __syncthreads();
    long long lo = (long long) blockIdx.x * MF_CHUNK;
    unsigned int cu = 0, cd = 0;
    for (int j = 0; j < MF_CHUNK_ROWS; j++) {
        long long i = lo + (long long) j * MF_CHUNK_THREADS + threadIdx.x;
        if (i < n) {
            mf_u32 a = mf_abs_bits(x[i]);
            if (hasUpper && a == vUp) cu++;
            if (a == vDn) cd++;
        }
    }
    atomicAdd(&su, cu);
    atomicAdd(&sd, cd);
    __syncthreads();
    if (threadIdx.x == 0) { cntUp[blockIdx.x] = su; cntDn[blockIdx.x] = sd; }
}

// Zeroes every x_i outside the kept rank range, exactly as RankSelect.keepRankRange:
// keep = vDn <= |x_i| <= vUp; of the entries equal to vUp the first skipUp (in index order) are
// dropped; of those equal to vDn only the first keepDn are kept. startUp/startDn[c] = equal
// entries before chunk c. Element order inside a chunk: row j, then thread t (i = lo + j*256 + t).
extern "C" __global__ void __launch_bounds__(MF_CHUNK_THREADS) mf_keep_rank_mask(float* x, long long n, mf_u32 vUp, int hasUpper, long long skipUp,
                                             mf_u32 vDn, long long keepDn,
                                             const long long* startUp, const long long* startDn) {
    MF_SHARED(unsigned int, wUp, MF_CHUNK_THREADS / 32);
    MF_SHARED(unsigned int, wDn, MF_CHUNK_THREADS / 32);
    long long lo = (long long) blockIdx.x * MF_CHUNK;
    long long cu = startUp[blockIdx.x], cd = startDn[blockIdx.x];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned int below = (1u << lane) - 1u;  // lanes before this one
    for (int j = 0; j < MF_CHUNK_ROWS; j++) {
        long long i = lo + (long long) j * MF_CHUNK_THREADS + threadIdx.x;
        bool in = i < n;
        mf_u32 a = in ? mf_abs_bits(x[i]) : 0xffffffffu;  // sentinel equals neither bound
        bool eu = hasUpper && a == vUp, ed = a == vDn;
        unsigned int bu = __ballot_sync(0xffffffffu, eu), bd = __ballot_sync(0xffffffffu, ed);
        if (lane == 0) { wUp[warp] = __popc(bu); wDn[warp] = __popc(bd); }
        __syncthreads();
        // rank among equal entries = equal entries before this one (earlier chunks, rows, warps, lanes)
        long long ru = cu + __popc(bu & below), rd = cd + __popc(bd & below);
        unsigned int rowUp = 0, rowDn = 0;
        for (int w = 0; w < MF_CHUNK_THREADS / 32; w++) {
            if (w < warp) { ru += wUp[w]; rd += wDn[w]; }
            rowUp += wUp[w];
            rowDn += wDn[w];
        }
        if (in) {
            bool keep = a <= vUp && a >= vDn;
            if (eu && ru < skipUp) keep = false;
            if (ed && rd >= keepDn) keep = false;
            if (!keep) x[i] = 0.0f;
        }
        cu += rowUp;
        cd += rowDn;
        __syncthreads();  // wUp/wDn are rewritten by the next row
    }
}
