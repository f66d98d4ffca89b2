// The calibration forward pass's non-GEMM steps (dev.mergeforge.backend.cuda.CudaForward), each
// written to round as the CPU forward pass (dev.mergeforge.model.DecoderLayer) does: explicit _rn
// intrinsics (no FMA), exp and sqrt in double where the Java code uses Math.exp/Math.sqrt, and
// the CPU's summation order wherever a sum is sequential there. Activations are row-major
// [rows, width] float32; rows are the tokens of all blocks of a chunk, one sequence after another,
// and pos[row] is the token's position in its sequence (so row - pos[row] is its first row).
// The GEMMs are cuBLAS's (CUBLAS_PEDANTIC_MATH, float32); residual adds reuse mf_add.
#include "mf_rows.cuh"

// Largest head_dim mf_attention accepts (its shared Q and K/V tiles); CudaForward checks it.
#define MF_MAX_HEAD_DIM 256

// out[r, j] = g[j] * (x[r, j] * inv), inv = (float) (1 / sqrt((float) (sum_j x[r, j]^2 / width) + eps)),
// as Norms.rms (the CPU's RMSNorm): the sum of squares left to right in double, so equal inputs give equal
// bits. A block of MF_ROWS (64) threads takes 64 consecutive rows (grid-stride over groups): their
// sums through mf_row_sum (coalesced loads staged in shared memory, one thread per row summing it in
// order), then the 64 rows' outputs written by the whole block, consecutive threads on consecutive
// columns. out must not alias x (both are __restrict__; CudaForward normalises into its own buffer).
extern "C" __global__ void __launch_bounds__(MF_ROWS) mf_rmsnorm(const float* __restrict__ x, const float* __restrict__ g,
                                                                 double eps, int width, float* __restrict__ out, long long rows) {
    MF_SHARED(float, inv, MF_ROWS);
    for (long long r0 = (long long) blockIdx.x * MF_ROWS; r0 < rows; r0 += (long long) gridDim.x * MF_ROWS) {
        double s = mf_row_sum<MF_SQUARE>(x, x, r0, width, rows * width);
        if (r0 + threadIdx.x < rows) {
            // mean of squares rounded to float (the CPU's (float) (ss / width)), then + eps and 1/sqrt in double
            float meanSq = __double2float_rn(__ddiv_rn(s, (double) width));
            inv[threadIdx.x] = __double2float_rn(__ddiv_rn(1.0, __dsqrt_rn(__dadd_rn((double) meanSq, eps))));
        }
        __syncthreads();
        long long cells = min((long long) MF_ROWS, rows - r0) * width;
        for (long long e = threadIdx.x; e < cells; e += MF_ROWS) {
            int r = (int) (e / width), j = (int) (e % width);
            long long o = (r0 + r) * width + j;
            out[o] = __fmul_rn(g[j], __fmul_rn(x[o], inv[r]));
        }
        // inv is rewritten by the next group only after mf_row_sum's barriers, which every thread
        // reaches after its outputs above; this barrier keeps that from depending on mf_row_sum
        __syncthreads();
    }
}

// Rotary embedding, rotate-half layout, in place on x [rows, heads * headDim]: for pair i < headDim/2
// at position p = pos[row], [x1, x2] -> [x1*cos - x2*sin, x2*cos + x1*sin] with cos/sin [maxPos, headDim/2]
// tabulated by the host exactly as dev.mergeforge.model.Rope computes them. One thread per pair.
extern "C" __global__ void mf_rope(float* x, const float* __restrict__ cosTab, const float* __restrict__ sinTab,
                                   const int* __restrict__ pos, int heads, int headDim, long long pairs) {
    int half = headDim / 2;
    MF_FOR(k, pairs) {
        long long row = k / ((long long) heads * half);
        int rest = (int) (k % ((long long) heads * half));
        int h = rest / half, i = rest % half;
        long long o = row * (long long) heads * headDim + (long long) h * headDim;
        long long tab = (long long) pos[row] * half + i;
        float c = cosTab[tab], s = sinTab[tab];
        float x1 = x[o + i], x2 = x[o + i + half];
        x[o + i] = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
        x[o + i + half] = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
    }
}

// e^x rounded to float, for float x: x = k*ln2 + r (Cody-Waite, |r| <= ln2/2), e^r by its Taylor
// polynomial of degree 13 (truncation < 1e-17) in double, times 2^k. Written in explicit _rn double
// arithmetic because libdevice's exp uses FMA: so the GPU and the host emulator give the same bits,
// which equal the CPU's (float) Math.exp(x) unless e^x lies within ~1e-16 (relative) of a float
// rounding boundary. e^x overflows float above 89 and underflows to 0 below -104.
__device__ __forceinline__ float mf_expf(float xf) {
    if (xf != xf) return xf;
    if (xf > 89.0f) return __uint_as_float(0x7f800000u);
    if (xf < -104.0f) return 0.0f;
    double x = (double) xf;
    double k = floor(__dadd_rn(__dmul_rn(x, 1.4426950408889634074), 0.5));
    // ln2 split so that k * hi is exact (hi has 21 trailing zero bits)
    double r = __dsub_rn(__dsub_rn(x, __dmul_rn(k, 6.93147180369123816490e-01)), __dmul_rn(k, 1.90821492927058770002e-10));
    const double c[14] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                          1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};
    double p = c[13];
    for (int i = 12; i >= 0; i--) p = __dadd_rn(__dmul_rn(p, r), c[i]);
    // 2^k as a double (k in [-151, 129], so the exponent field k + 1023 is that of a normal number)
    double twoK = __longlong_as_double((long long) (k + 1023.0) << 52);
    return __double2float_rn(__dmul_rn(p, twoK));
}

#define MF_ATT_THREADS 256                       // threads per block (__launch_bounds__)
#define MF_ATT_QT 16                             // query rows per block
#define MF_ATT_KT 16                             // keys per tile: MF_ATT_QT * MF_ATT_KT = MF_ATT_THREADS scores
#define MF_ATT_PITCH (MF_MAX_HEAD_DIM + 1)       // odd pitch: the 16 key rows of a warp's scores hit 16 banks
#define MF_ATT_SPITCH (MF_ATT_KT + 1)
#define MF_ATT_ACC (MF_ATT_QT * MF_MAX_HEAD_DIM / MF_ATT_THREADS)  // output cells per thread (16)

// Is key row kr one query row rr may attend to? Same sequence (rows rr - pos[rr] .. rr), and inside
// the sliding window when window > 0 (rr - kr < window), as Attention's j range.
__device__ __forceinline__ bool mf_att_allowed(long long rr, int p, long long kr, int window) {
    return kr >= rr - p && kr <= rr && (window <= 0 || rr - kr < window);
}

// Causal grouped-query attention, tiled: a block of MF_ATT_THREADS threads per (tile of MF_ATT_QT
// consecutive query rows, head), grid-stride over those pairs. The tile's Q rows stay in shared
// memory; the keys its rows may see (from the first allowed key of its first row to its last row)
// pass through shared memory MF_ATT_KT at a time, three times, as Attention.attend computes
// each row: (1) the max of the scores q.k_j * scale (each score by one thread, the dot product
// left to right in float: MatMul.dot's order), (2) e_j = e^(score_j - max) (mf_expf) computed in
// parallel and summed by the row's thread left to right in float, (3) p_j = e_j * (1/sum) and
// out = sum_j p_j * v_j, left to right over j, one thread per output cell (V tiles replace K tiles
// in the same shared array). Scores are recomputed in each pass instead of stored, so the bits are
// those of the CPU's scalar loop (Attention.attend, which the CPU runs for blocks of fewer than
// MatMul.NATIVE_MIN_TOKENS tokens or without the native library; longer blocks go through
// AttentionProducts' native GEMM, one fused chain per score, which agrees only to rounding:
// CalibKernelsTest compares bits with the scalar loop, CudaForwardEmulatedTest the whole pass within
// a tolerance); a key outside a row's causal/window range is skipped, never added as zero. Rows of a
// tile may belong to different sequences (rows are the tokens of a chunk's sequences in a row).
// q, out [rows, heads*headDim]; k, v [rows, kvHeads*headDim]; head h reads kv head h / (heads /
// kvHeads). headDim <= MF_MAX_HEAD_DIM.
extern "C" __global__ void __launch_bounds__(MF_ATT_THREADS) mf_attention(
        const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v, const int* __restrict__ pos,
        int heads, int kvHeads, int headDim, int window, float scale, float* __restrict__ out, long long rows) {
    MF_SHARED(float, qs, MF_ATT_QT * MF_ATT_PITCH);   // the tile's query rows
    MF_SHARED(float, kvs, MF_ATT_KT * MF_ATT_PITCH);  // the current key tile, or value tile in pass 3
    MF_SHARED(float, sc, MF_ATT_QT * MF_ATT_SPITCH);  // the current tile's scores, exponentials or weights
    MF_SHARED(float, rowMax, MF_ATT_QT);
    MF_SHARED(float, rowInv, MF_ATT_QT);
    const int t = threadIdx.x, sr = t / MF_ATT_KT, sj = t % MF_ATT_KT;  // this thread's score cell
    const int qd = heads * headDim, kvd = kvHeads * headDim, group = heads / kvHeads;
    const long long tiles = (rows + MF_ATT_QT - 1) / MF_ATT_QT;
    for (long long task = blockIdx.x; task < tiles * heads; task += gridDim.x) {
        const long long r0 = (task / heads) * MF_ATT_QT;
        const int h = (int) (task % heads);
        const int nrows = (int) min((long long) MF_ATT_QT, rows - r0);
        const long long kvOff = (long long) (h / group) * headDim;
        // keys the tile needs: from its first row's first allowed key (later rows start no earlier:
        // within a sequence the window only moves right, and a later sequence starts after it) to its last row
        const int p0 = pos[r0];
        const long long kLo = r0 - p0 + (window > 0 ? max(0, p0 - window + 1) : 0), kHi = r0 + nrows - 1;
        // this thread's score row, and its position (for the allowed-key test)
        const long long rr = r0 + sr;
        const int pr = sr < nrows ? pos[rr] : 0;
        for (int e = t; e < MF_ATT_QT * headDim; e += MF_ATT_THREADS) {
            int r = e / headDim, i = e % headDim;
            if (r < nrows) qs[r * MF_ATT_PITCH + i] = q[(r0 + r) * qd + (long long) h * headDim + i];
        }
        float mx = __uint_as_float(0xff800000u), sum = 0.0f;  // row t's max and sum (threads t < nrows)
        float acc[MF_ATT_ACC];
        for (int m = 0; m < MF_ATT_ACC; m++) acc[m] = 0.0f;
        for (int pass = 0; pass < 3; pass++) {
            if (pass == 2) {
                if (t < nrows) { rowMax[t] = mx; rowInv[t] = __fdiv_rn(1.0f, sum); }
            } else if (pass == 1) {
                if (t < nrows) rowMax[t] = mx;
            }
            for (long long kt0 = kLo; kt0 <= kHi; kt0 += MF_ATT_KT) {
                __syncthreads();  // qs and rowMax/rowInv written; the previous tile's kvs and sc consumed
                for (int e = t; e < MF_ATT_KT * headDim; e += MF_ATT_THREADS) {
                    int j = e / headDim, i = e % headDim;
                    if (kt0 + j <= kHi) kvs[j * MF_ATT_PITCH + i] = k[(kt0 + j) * kvd + kvOff + i];
                }
                __syncthreads();
                const long long kr = kt0 + sj;
                const bool ok = sr < nrows && kr <= kHi && mf_att_allowed(rr, pr, kr, window);
                if (ok) {
                    float d = 0.0f;
                    for (int i = 0; i < headDim; i++) d = __fadd_rn(d, __fmul_rn(qs[sr * MF_ATT_PITCH + i], kvs[sj * MF_ATT_PITCH + i]));
                    d = __fmul_rn(d, scale);
                    if (pass == 0) sc[sr * MF_ATT_SPITCH + sj] = d;
                    else if (pass == 1) sc[sr * MF_ATT_SPITCH + sj] = mf_expf(__fsub_rn(d, rowMax[sr]));
                    else sc[sr * MF_ATT_SPITCH + sj] = __fmul_rn(mf_expf(__fsub_rn(d, rowMax[sr])), rowInv[sr]);
                }
                if (pass == 2) {
                    __syncthreads();  // every score of the tile read kvs: the values may replace the keys
                    for (int e = t; e < MF_ATT_KT * headDim; e += MF_ATT_THREADS) {
                        int j = e / headDim, i = e % headDim;
                        if (kt0 + j <= kHi) kvs[j * MF_ATT_PITCH + i] = v[(kt0 + j) * kvd + kvOff + i];
                    }
                }
                __syncthreads();
                if (pass < 2) {
                    // row t's max (order-free) or its sum of exponentials, keys in order
                    if (t < nrows) {
                        const long long rt = r0 + t;
                        const int pt = pos[rt];
                        for (int j = 0; j < MF_ATT_KT && kt0 + j <= kHi; j++) {
                            if (!mf_att_allowed(rt, pt, kt0 + j, window)) continue;
                            float x = sc[t * MF_ATT_SPITCH + j];
                            if (pass == 0) { if (x > mx) mx = x; }
                            else sum = __fadd_rn(sum, x);
                        }
                    }
                } else {
                    // out cells e = t + m * MF_ATT_THREADS (consecutive threads, consecutive dims): acc += p_j * v_j[i]
#pragma unroll
                    for (int m = 0; m < MF_ATT_ACC; m++) {
                        int e = t + m * MF_ATT_THREADS, r = e / headDim, i = e % headDim;
                        if (r >= nrows) continue;
                        const long long ro = r0 + r;
                        const int po = pos[ro];
                        for (int j = 0; j < MF_ATT_KT && kt0 + j <= kHi; j++) {
                            if (mf_att_allowed(ro, po, kt0 + j, window)) {
                                acc[m] = __fadd_rn(acc[m], __fmul_rn(sc[r * MF_ATT_SPITCH + j], kvs[j * MF_ATT_PITCH + i]));
                            }
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int m = 0; m < MF_ATT_ACC; m++) {
            int e = t + m * MF_ATT_THREADS, r = e / headDim, i = e % headDim;
            if (r < nrows) out[(r0 + r) * qd + (long long) h * headDim + i] = acc[m];
        }
        // the next task rewrites qs, rowMax and rowInv (its first tile's barrier would order that
        // too; this one keeps each task self-contained)
        __syncthreads();
    }
}

// SwiGLU: gate[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + e^-z), as DecoderLayer.
extern "C" __global__ void mf_silu_mul(float* gate, const float* __restrict__ up, long long n) {
    MF_FOR(i, n) {
        float z = gate[i];
        float e = mf_expf(-z);
        gate[i] = __fmul_rn(__fdiv_rn(z, __fadd_rn(1.0f, e)), up[i]);
    }
}

// y[r, c] = y[r, c] + b[c] for y [n / cols, cols] (a Linear's bias after its GEMM, as MatMul adds it).
extern "C" __global__ void mf_bias_add(float* y, const float* __restrict__ b, long long cols, long long n) {
    MF_FOR(i, n) y[i] = __fadd_rn(y[i], b[i % cols]);
}

// The AIM statistic's sums: acc[j] += |x[r, j]| for r = 0, 1, ..., rows-1 in order, in double, one
// thread per column, which is the order ActMeanStats adds them on the CPU (token after token,
// sequence after sequence), so equal activations give equal bits.
extern "C" __global__ void mf_abs_sum_cols(const float* __restrict__ x, long long rows, int width, double* acc) {
    MF_FOR(j, (long long) width) {
        double s = acc[j];
        for (long long r = 0; r < rows; r++) s = __dadd_rn(s, fabs((double) x[r * width + j]));
        acc[j] = s;
    }
}
