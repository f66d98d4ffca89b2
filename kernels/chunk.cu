// The chunk ops of dev.mergeforge.backend.ChunkOps that no other kernel file has (CudaChunkOps):
// loads with a non-finite flag, the remaining elementwise ops, reductions and Philox drops placed by
// the element's index in the whole tensor (a chunk starts at tensor index `offset`), |x|-bit
// histograms and lane ops. Every float operation is an explicit round-to-nearest intrinsic (no FMA
// contraction); integer counts and the fixed reduction order make every result independent of the
// launch shape, so each op gives JavaChunkOps' bits.
#include "mf_stripes.cuh"
#include "mf_explog.cuh"

__device__ __forceinline__ bool mf_nonfinite(float v) { return (__float_as_uint(v) & 0x7f800000u) == 0x7f800000u; }

// dst[i] = float32(src[i]), src holding n values of kind 0 = f32, 1 = bf16, 2 = f16;
// *bad = 1 when some value is NaN or ±Inf (every writer stores the same 1)
extern "C" __global__ void mf_chunk_load(const void* __restrict__ src, int kind, float* __restrict__ dst, long long n, int* bad) {
    MF_FOR(i, n) {
        float v;
        if (kind == 0) v = static_cast<const float*>(src)[i];
        else if (kind == 1) v = mf_bf16_to_f32(static_cast<const unsigned short*>(src)[i]);
        else v = mf_f16_to_f32(static_cast<const unsigned short*>(src)[i]);
        if (mf_nonfinite(v)) *bad = 1;
        dst[i] = v;
    }
}

// out[i] = a[i] * b[i]
extern "C" __global__ void mf_chunk_mul(const float* a, const float* b, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fmul_rn(a[i], b[i]);
}

// out[i] = a[i] / b[i] (IEEE division)
extern "C" __global__ void mf_chunk_div(const float* a, const float* b, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fdiv_rn(a[i], b[i]);
}

// out[i] = |x[i]| (the sign bit cleared, NaN payloads kept)
extern "C" __global__ void mf_chunk_abs(const float* x, float* out, long long n) {
    MF_FOR(i, n) out[i] = __uint_as_float(__float_as_uint(x[i]) & 0x7fffffffu);
}

// out[i] = x < lo ? lo : (x > hi ? hi : x) (NaN fails both and is kept)
extern "C" __global__ void mf_chunk_clamp(const float* x, float lo, float hi, float* out, long long n) {
    MF_FOR(i, n) {
        float v = x[i];
        out[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}

// x[i] = v
extern "C" __global__ void mf_chunk_fill(float* x, float v, long long n) {
    MF_FOR(i, n) x[i] = v;
}

// out[i] = (a * x[i]) + b: the product rounded, then the sum
extern "C" __global__ void mf_chunk_affine(const float* x, float a, float b, float* out, long long n) {
    MF_FOR(i, n) out[i] = __fadd_rn(__fmul_rn(a, x[i]), b);
}

// out[i] = ref[i] == 0 (either sign) ? +0.0 : x[i]
extern "C" __global__ void mf_chunk_keep_nonzero(const float* x, const float* ref, float* out, long long n) {
    MF_FOR(i, n) out[i] = ref[i] == 0.0f ? 0.0f : x[i];
}

// out[i] = sum of w[j] over the xs[j][i] whose sign (+1, -1, 0) equals sign[i], left to right
extern "C" __global__ void mf_chunk_disjoint_divisor(const float* const* xs, const float* w, int k, const float* sign,
                                                     float* out, long long n) {
    MF_FOR(i, n) {
        float s = sign[i], div = 0.0f;
        for (int j = 0; j < k; j++) {
            float v = xs[j][i];
            float sv = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
            if (sv == s) div = __fadd_rn(div, w[j]);
        }
        out[i] = div;
    }
}

// Runs of a chunk whose element 0 is tensor index `offset`, cut at the tensor's 4096-element block
// edges: run 0 is [0, first), first = min(n, 4096 - offset % 4096), and continues the open block's
// stripes open_in[0..63] (zeros when offset is a block edge); run r > 0 is
// [first + (r-1)*4096, min(n, first + r*4096)) from 0.0. Chunk index i is stripe (offset + i) % 64
// of its block (mf_stripes.cuh). A run that ends at a block edge writes its block's tree sum to
// partial[r]; the last run, when it does not, writes its stripes to open_out[0..63] (a separate
// buffer: run 0's warp may still be reading open_in). term = |x| (kind 0), x*x (1) or x*y (2), each
// in double. One warp per run, MF_CHUNK_SUM_THREADS threads (two warps) per block.
#define MF_CHUNK_SUM_THREADS 64

template <int KIND>
__device__ __forceinline__ void mf_chunk_runs(const float* __restrict__ x, const float* __restrict__ y, long long n, long long offset,
                                              const double* open_in, double* partial, double* open_out, long long runs) {
    const int lane = threadIdx.x % 32, warps = MF_CHUNK_SUM_THREADS / 32;
    const long long phase = offset % MF_SBLOCK, first = min(n, MF_SBLOCK - phase);
    for (long long r = (long long) blockIdx.x * warps + threadIdx.x / 32; r < runs; r += (long long) gridDim.x * warps) {
        long long lo = r == 0 ? 0 : first + (r - 1) * MF_SBLOCK;
        long long hi = r == 0 ? first : min(n, lo + MF_SBLOCK);
        long long b0 = r == 0 ? -phase : lo;  // chunk index of the block's position 0
        double s0 = r == 0 ? open_in[2 * lane] : 0.0, s1 = r == 0 ? open_in[2 * lane + 1] : 0.0;
        mf_stripes_add<KIND>(x, y, b0, lo, hi, lane, s0, s1);
        if (hi - b0 == MF_SBLOCK) {
            double s = mf_stripes_tree(s0, s1);
            if (lane == 0) partial[r] = s;
        } else {
            open_out[2 * lane] = s0;
            open_out[2 * lane + 1] = s1;
        }
    }
}

extern "C" __global__ void __launch_bounds__(MF_CHUNK_SUM_THREADS) mf_chunk_block_sums(int kind, const float* __restrict__ x,
        const float* __restrict__ y, long long n, long long offset, const double* open_in, double* partial, double* open_out,
        long long runs) {
    if (kind == 0) mf_chunk_runs<MF_ABS>(x, y, n, offset, open_in, partial, open_out, runs);
    else if (kind == 1) mf_chunk_runs<MF_SQUARE>(x, y, n, offset, open_in, partial, open_out, runs);
    else mf_chunk_runs<MF_PRODUCT>(x, y, n, offset, open_in, partial, open_out, runs);
}

// |x| bits a = bits & 0x7fffffff: high < 0: hist[a >> 16] += 1 (2^15 bins); else for the a with
// a >> 16 == high: hist[a & 0xffff] += 1 (2^16 bins). Integer counts, so any order gives the same.
extern "C" __global__ void mf_chunk_abs_hist(const float* __restrict__ x, long long n, int high, unsigned long long* hist) {
    MF_FOR(i, n) {
        mf_u32 a = __float_as_uint(x[i]) & 0x7fffffffu;
        if (high < 0) atomicAdd(&hist[a >> 16], 1ull);
        else if ((int) (a >> 16) == high) atomicAdd(&hist[a & 0xffffu], 1ull);
    }
}

// out[v] = dot of lane v of a and b (lanes of `length` elements `inner` apart, as Lanes) in the
// canonical order over the lane's own index k (PortableOps.laneDots, mf_thread_sum). One thread
// per lane: adjacent lanes (inner > 1) read adjacent floats.
extern "C" __global__ void mf_chunk_lane_dots(const float* __restrict__ a, const float* __restrict__ b, long long length,
                                              long long inner, double* out, long long count) {
    MF_FOR(v, count) {
        long long o = v / inner, j = v - o * inner;
        out[v] = mf_thread_sum(length, [&](long long k) {
            long long i = (o * length + k) * inner + j;
            return __dmul_rn((double) a[i], (double) b[i]);
        });
    }
}

// out[i] = s[lane(i)] * x[i], lane(i) = (i / (length*inner))*inner + i % inner
extern "C" __global__ void mf_chunk_lane_scale(const float* x, const float* __restrict__ s, long long length, long long inner,
                                               float* out, long long n) {
    MF_FOR(i, n) {
        long long lane = (i / (length * inner)) * inner + i % inner;
        out[i] = __fmul_rn(s[lane], x[i]);
    }
}

// The keep threshold of Philox.threshold24: 0 for p < 0 or NaN, else min(2^24, ceil(p * 2^24)) in double
__device__ __forceinline__ long long mf_threshold24(float p) {
    double d = (double) p;
    if (!(d >= 0.0)) return 0;
    double t = ceil(__dmul_rn(d, 16777216.0));
    return t >= 16777216.0 ? 16777216LL : (long long) t;
}

// One thread per Philox counter block c overlapping the chunk's tensor indices [offset, offset+n):
// element g = 4c + l draws lane l; it is kept iff draw >> 8 < its threshold (thr, or
// threshold24(p[g - offset]) when p is given); a dropped element becomes +0.0.
__device__ __forceinline__ void mf_chunk_drops(float* x, const float* p, long long n, long long offset, mf_u32 k0, mf_u32 k1,
                                               long long thr) {
    long long c0 = offset >> 2, groups = ((offset + n - 1) >> 2) - c0 + 1;
    MF_FOR(t, groups) {
        long long c = c0 + t;
        mf_u32 r[4];
        mf_philox((mf_u32) c, (mf_u32) ((unsigned long long) c >> 32), k0, k1, r);
        for (int l = 0; l < 4; l++) {
            long long i = c * 4 + l - offset;
            if (i < 0 || i >= n) continue;
            long long keep = p != nullptr ? mf_threshold24(p[i]) : thr;
            if ((long long) (r[l] >> 8) >= keep) x[i] = 0.0f;
        }
    }
}

// DARE: x[i] = +0.0 where the 24-bit draw of tensor index offset + i is >= thr (threshold24(density))
extern "C" __global__ void mf_chunk_philox_drop(float* x, long long n, long long offset, mf_u32 k0, mf_u32 k1, mf_u32 thr) {
    if (n > 0) mf_chunk_drops(x, nullptr, n, offset, k0, k1, (long long) thr);
}

// DELLA: x[i] = +0.0 where the 24-bit draw of tensor index offset + i is >= threshold24(p[i])
extern "C" __global__ void mf_chunk_drop_prob(float* x, const float* p, long long n, long long offset, mf_u32 k0, mf_u32 k1) {
    if (n > 0) mf_chunk_drops(x, p, n, offset, k0, k1, 0);
}

// DELLA's and SCE's keep bits (docs/methods.md, "Passes over chunks"; KeepBitLoops): bit j of
// word k, little-endian 64-bit words, is set iff the float bits of x[from + 64k + j] are not
// those of +0.0 (-0.0 and NaN set); a last word's unused bits clear. One thread per word.
extern "C" __global__ void mf_chunk_nonzero_bits(const float* __restrict__ x, long long from, long long n, mf_u64* bits) {
    long long words = (n + 63) / 64;
    MF_FOR(k, words) {
        long long lo = k * 64, hi = min(n, lo + 64);
        mf_u64 w = 0;
        for (long long j = lo; j < hi; j++) {
            if (MF_F2U(x[from + j]) != 0u) w |= 1ull << (j - lo);
        }
        bits[k] = w;
    }
}

// x[from + j] = +0.0 where bit j of the words is clear; unchanged where set (KeepBitLoops.keepBits)
extern "C" __global__ void mf_chunk_keep_bits(float* x, long long from, long long n, const mf_u64* __restrict__ bits) {
    MF_FOR(j, n) {
        if (((bits[j >> 6] >> (j & 63)) & 1ull) == 0ull) x[from + j] = 0.0f;
    }
}

// Arcee Fusion's order-key histogram (FusionLoops.orderHistogram): k = the float bits with the
// negatives (-0.0 too) flipped below the positives, so unsigned order is numeric order;
// high < 0: hist[k >> 16] += 1; else for the k with k >> 16 == high: hist[k & 0xffff] += 1
// (2^16 bins each). Integer counts, so any order gives the same.
extern "C" __global__ void mf_chunk_order_hist(const float* __restrict__ x, long long n, int high, mf_u64* hist) {
    MF_FOR(i, n) {
        mf_u32 b = MF_F2U(x[i]);
        mf_u32 k = b ^ ((b >> 31) != 0u ? 0xffffffffu : 0x80000000u);
        if (high < 0) atomicAdd(&hist[k >> 16], 1ull);
        else if ((int) (k >> 16) == high) atomicAdd(&hist[k & 0xffffu], 1ull);
    }
}

// Arcee Fusion's importance (FusionLoops.importance): imp[i] = |o[i] - b[i]| * kl[i / cols], float32
extern "C" __global__ void mf_fusion_importance(const float* __restrict__ b, const float* __restrict__ o, long long cols,
                                                const float* __restrict__ kl, float* imp, long long n) {
    MF_FOR(i, n) imp[i] = __fmul_rn(fabsf(__fsub_rn(o[i], b[i])), kl[i / cols]);
}

// Arcee Fusion's combine (FusionLoops.combine): d = o[i] - b[i]; out[i] = b[i] + d * m, m = 1 where
// |d| * kl[i / cols] >= t, else 0 (the product kept, so d = inf or NaN still gives NaN). out may
// alias b or o: each element is read before it is written, by the same thread.
extern "C" __global__ void mf_fusion_combine(const float* b, const float* o, long long cols, const float* __restrict__ kl, float t,
                                             float* out, long long n) {
    MF_FOR(i, n) {
        float bi = b[i], d = __fsub_rn(o[i], bi);
        float m = __fmul_rn(fabsf(d), kl[i / cols]) >= t ? 1.0f : 0.0f;
        out[i] = __fadd_rn(bi, __fmul_rn(d, m));
    }
}

// Arcee Fusion's row KL (FusionLoops.rowKl, docs/methods.md "arcee_fusion"): kl[r] = KL(p || q) of
// row r of the rows x cols chunk, in double. mb, mo: the row's float maxima (NaN skipped, the first
// of equal values kept); sb = sum exp(b_j - mb), so = sum exp(o_j - mo); a row whose sb + so is NaN
// (a NaN or +Inf in it) gets NaN; else the sum of p log(p/q), p = exp(o_j - mo)(1/so) + eps,
// q = exp(b_j - mb)(1/sb) + eps, the exponentials computed again (the same values). Every sum in
// the canonical order over the row's positions (mf_thread_sum), exp/log from mf_explog.cuh. One
// thread per row (a warp per block of a row would use a GPU better, docs/cuda.md).
extern "C" __global__ void mf_fusion_row_kl(const float* __restrict__ b, const float* __restrict__ o, long long cols, double* kl,
                                            long long rows) {
    MF_FOR(r, rows) {
        const float* br = b + r * cols;
        const float* orow = o + r * cols;
        float fb = MF_U2F(0xff800000u), fo = MF_U2F(0xff800000u);
        for (long long j = 0; j < cols; j++) {
            float vb = br[j], vo = orow[j];
            fb = vb > fb ? vb : fb;
            fo = vo > fo ? vo : fo;
        }
        double mb = fb, mo = fo;
        double sb = mf_thread_sum(cols, [&](long long j) { return mf_exp(MF_DSUB((double) br[j], mb)); });
        double so = mf_thread_sum(cols, [&](long long j) { return mf_exp(MF_DSUB((double) orow[j], mo)); });
        double both = MF_DADD(sb, so);
        if (both != both) {
            kl[r] = MF_U2D(0x7ff8000000000000ull);
            continue;
        }
        double ib = MF_DDIV(1.0, sb), io = MF_DDIV(1.0, so);
        kl[r] = mf_thread_sum(cols, [&](long long j) {
            double p = MF_DADD(MF_DMUL(mf_exp(MF_DSUB((double) orow[j], mo)), io), 1e-8);
            double q = MF_DADD(MF_DMUL(mf_exp(MF_DSUB((double) br[j], mb)), ib), 1e-8);
            return MF_DMUL(p, mf_log(MF_DDIV(p, q)));
        });
    }
}
