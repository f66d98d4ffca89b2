// The calibration forward pass's non-GEMM steps (dev.mergeforge.backend.cuda.CudaForward), each
// written to round as the CPU forward pass (dev.mergeforge.model.DecoderLayer) does: explicit _rn
// intrinsics (no FMA), exp and sqrt in double where the Java code uses Math.exp/Math.sqrt, and
// the CPU's summation order wherever a sum is sequential there. Activations are row-major
// [rows, width] float32; rows are the tokens of all blocks of a chunk, one sequence after another,
// and pos[row] is the token's position in its sequence (so row - pos[row] is its first row).
// The GEMMs are cuBLAS's (CUBLAS_PEDANTIC_MATH, float32); residual adds reuse mf_add.
#include "mf_common.cuh"

// Largest head_dim mf_attention accepts (its per-thread output accumulators); CudaForward checks it.
#define MF_MAX_HEAD_DIM 256

// out[r, j] = g[j] * (x[r, j] * inv), inv = (float) (1 / sqrt((float) (sum_j x[r, j]^2 / width) + eps)):
// one thread per row, the sum of squares left to right in double as DecoderLayer.rmsNorm, so equal
// inputs give equal bits. (Rows are many, so threads are plenty; the row-strided reads are a small
// cost next to the GEMMs, and no barrier is needed.)
extern "C" __global__ void mf_rmsnorm(const float* __restrict__ x, const float* __restrict__ g, double eps, int width,
                                      float* __restrict__ out, long long rows) {
    MF_FOR(r, rows) {
        const float* xr = x + r * width;
        double s = 0.0;
        for (int j = 0; j < width; j++) s = __dadd_rn(s, __dmul_rn((double) xr[j], (double) xr[j]));
        // mean of squares rounded to float (the CPU's (float) (ss / width)), then + eps and 1/sqrt in double
        float meanSq = __double2float_rn(__ddiv_rn(s, (double) width));
        float inv = __double2float_rn(__ddiv_rn(1.0, __dsqrt_rn(__dadd_rn((double) meanSq, eps))));
        float* o = out + r * width;
        for (int j = 0; j < width; j++) o[j] = __fmul_rn(g[j], __fmul_rn(xr[j], inv));
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

// q_row · k_key over headDim, left to right in float (MatMul.dot's order)
__device__ __forceinline__ float mf_dot_seq(const float* a, const float* b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s = __fadd_rn(s, __fmul_rn(a[i], b[i]));
    return s;
}

// Causal grouped-query attention, one thread per (row, head) doing what DecoderLayer.attention does
// for it, in the same order: scores q·k_j * scale for the allowed keys j (j <= p, and p - j < window
// when window > 0), their max, e_j = e^(score_j - max) (mf_expf) summed left to right in float,
// out = sum_j (e_j * (1/sum)) * v_j left to right. Scores are recomputed in each of the three passes
// instead of stored. q, out [rows, heads*headDim]; k, v [rows, kvHeads*headDim]; head h reads kv
// head h / (heads / kvHeads). headDim <= MF_MAX_HEAD_DIM.
extern "C" __global__ void mf_attention(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                                        const int* __restrict__ pos, int heads, int kvHeads, int headDim, int window,
                                        float scale, float* __restrict__ out, long long tasks) {
    int qd = heads * headDim, kvd = kvHeads * headDim, group = heads / kvHeads;
    MF_FOR(task, tasks) {
        long long row = task / heads;
        int h = (int) (task % heads);
        int p = pos[row];
        long long first = row - p;                         // row of position 0 of this sequence
        int j0 = window > 0 ? max(0, p - window + 1) : 0;  // first allowed key position
        const float* qr = q + row * qd + (long long) h * headDim;
        long long kvOff = (long long) (h / group) * headDim;
        float mx = __uint_as_float(0xff800000u);  // -infinity
        for (int j = j0; j <= p; j++) {
            float sc = __fmul_rn(mf_dot_seq(qr, k + (first + j) * kvd + kvOff, headDim), scale);
            if (sc > mx) mx = sc;
        }
        float sum = 0.0f;
        for (int j = j0; j <= p; j++) {
            float sc = __fmul_rn(mf_dot_seq(qr, k + (first + j) * kvd + kvOff, headDim), scale);
            sum = __fadd_rn(sum, mf_expf(__fsub_rn(sc, mx)));
        }
        float inv = __fdiv_rn(1.0f, sum);
        float acc[MF_MAX_HEAD_DIM];
        for (int i = 0; i < headDim; i++) acc[i] = 0.0f;
        for (int j = j0; j <= p; j++) {
            float sc = __fmul_rn(mf_dot_seq(qr, k + (first + j) * kvd + kvOff, headDim), scale);
            float pj = __fmul_rn(mf_expf(__fsub_rn(sc, mx)), inv);
            const float* vj = v + (first + j) * kvd + kvOff;
            for (int i = 0; i < headDim; i++) acc[i] = __fadd_rn(acc[i], __fmul_rn(pj, vj[i]));
        }
        float* o = out + row * qd + (long long) h * headDim;
        for (int i = 0; i < headDim; i++) o[i] = acc[i];
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
