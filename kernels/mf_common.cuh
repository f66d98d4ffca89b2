// Scalar helpers shared by every mergeforge kernel. They are written in integer arithmetic only so
// that they give the Java reference's bits exactly, and so that the same source also compiles as
// plain C on the host (MF_HD expands to nothing there): CudaScalarHostTest builds it with gcc and
// compares it with dev.mergeforge.tensor.Floats and dev.mergeforge.backend.Philox, without a GPU.
#ifndef MF_COMMON_CUH
#define MF_COMMON_CUH

#ifdef __CUDACC__
#define MF_HD __host__ __device__ __forceinline__
#else
#include <stdint.h>
#include <string.h>
#define MF_HD static inline
#endif

typedef unsigned int mf_u32;
typedef unsigned long long mf_u64;

#ifdef __CUDA_ARCH__
#define MF_F2U(f) __float_as_uint(f)
#define MF_U2F(u) __uint_as_float(u)
#else
MF_HD mf_u32 mf_f2u_host(float f) { mf_u32 u; memcpy(&u, &f, 4); return u; }
MF_HD float mf_u2f_host(mf_u32 u) { float f; memcpy(&f, &u, 4); return f; }
#define MF_F2U(f) mf_f2u_host(f)
#define MF_U2F(u) mf_u2f_host(u)
#endif

// bf16 -> f32: the bf16 bits are the top half of the float32 (exact, NaN payload kept).
MF_HD float mf_bf16_to_f32(unsigned short h) { return MF_U2F(((mf_u32) h) << 16); }

// f32 -> bf16, as Floats.floatToBf16: NaN -> (bits >> 16) | 0x40 (quiet, sign kept);
// otherwise add 0x7fff plus the lowest kept bit and truncate (round to nearest even).
MF_HD unsigned short mf_f32_to_bf16(float f) {
    mf_u32 x = MF_F2U(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short) ((x >> 16) | 0x0040u);
    mf_u32 rounded = x + 0x7fffu + ((x >> 16) & 1u);
    return (unsigned short) (rounded >> 16);
}

// f16 -> f32, as Float.float16ToFloat does on x86-64/aarch64 HotSpot (its F16C/FCVT intrinsic, also
// used by the interpreter): exact; subnormals normalised; a NaN is quieted with its payload kept.
MF_HD float mf_f16_to_f32(unsigned short h) {
    mf_u32 sign = ((mf_u32) h & 0x8000u) << 16;
    mf_u32 e = ((mf_u32) h >> 10) & 0x1fu;
    mf_u32 m = (mf_u32) h & 0x3ffu;
    if (e == 0x1fu) return MF_U2F(m == 0 ? (sign | 0x7f800000u) : (sign | 0x7fc00000u | (m << 13)));  // inf or quiet NaN
    if (e != 0) return MF_U2F(sign | ((e + 112u) << 23) | (m << 13)); // normal: rebias 15 -> 127
    if (m == 0) return MF_U2F(sign);                                  // signed zero
    // subnormal: value m * 2^-24; normalise so the leading 1 becomes the implicit bit
    int shift = 0;
    while ((m & 0x400u) == 0) { m <<= 1; shift++; }
    return MF_U2F(sign | ((mf_u32) (113 - shift) << 23) | ((m & 0x3ffu) << 13));
}

// f32 -> f16, as Float.floatToFloat16: round to nearest even, overflow to infinity, subnormal
// results rounded at the right position. A NaN gives what HotSpot's intrinsic (vcvtps2ph, also used
// by the interpreter) gives: the quiet NaN with the sign and the top 10 significand bits. (The
// JDK's Java fallback code folds the low bits instead; it is not what runs on x86-64.)
MF_HD unsigned short mf_f32_to_f16(float f) {
    mf_u32 x = MF_F2U(f);
    mf_u32 sign = (x >> 16) & 0x8000u;
    mf_u32 ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (unsigned short) (sign | 0x7e00u | ((x & 0x007fffffu) >> 13));
    // |f| >= 65520 (max half + half an ulp) -> infinity
    if (ax >= 0x477ff000u) return (unsigned short) (sign | 0x7c00u);
    // |f| <= 2^-25 -> signed zero (half-way to the smallest subnormal rounds to even, i.e. zero)
    if (ax <= 0x33000000u) return (unsigned short) sign;
    int exp = (int) (ax >> 23) - 127;            // Math.getExponent, in [-25, 15] here
    int expdelta = 0;
    mf_u32 msb = 0;
    if (exp < -14) { expdelta = -14 - exp; exp = -15; msb = 0x00800000u; }
    mf_u32 sig = (x & 0x007fffffu) | msb;
    mf_u32 bits = sig >> (13 + expdelta);
    mf_u32 lsb = sig & (1u << (13 + expdelta));
    mf_u32 round = sig & (1u << (12 + expdelta));
    mf_u32 sticky = sig & ((1u << (12 + expdelta)) - 1u);
    if (round != 0 && (lsb | sticky) != 0) bits++;
    return (unsigned short) (sign | ((((mf_u32) (exp + 15)) << 10) + bits));
}

// Philox-4x32-10 block for counter (c0, c1, 0, 0) under key (k0, k1), as Philox.block.
MF_HD void mf_philox(mf_u32 c0, mf_u32 c1, mf_u32 k0, mf_u32 k1, mf_u32 out[4]) {
    mf_u32 x0 = c0, x1 = c1, x2 = 0, x3 = 0;
    for (int r = 0; r < 10; r++) {
        mf_u64 p0 = (mf_u64) 0xD2511F53u * x0;
        mf_u64 p1 = (mf_u64) 0xCD9E8D57u * x2;
        mf_u32 y0 = (mf_u32) (p1 >> 32) ^ x1 ^ k0;
        mf_u32 y1 = (mf_u32) p1;
        mf_u32 y2 = (mf_u32) (p0 >> 32) ^ x3 ^ k1;
        mf_u32 y3 = (mf_u32) p0;
        x0 = y0; x1 = y1; x2 = y2; x3 = y3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

#ifdef __CUDACC__
// Shared memory is declared through these, never with a bare __shared__: on the GPU they are plain
// __shared__ declarations; the host emulator (kernels/host/cuda_host_shim.h) defines them as a
// per-block array whose every access is bounds- and race-checked.
#ifndef MF_EMULATOR
#define MF_SHARED(T, name, n) __shared__ T name[n]
#define MF_SHARED_VAR(T, name) __shared__ T name
#endif

// Grid-stride loop over [0, n) with 64-bit indices.
#define MF_FOR(i, n) for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                          i += (long long) gridDim.x * blockDim.x)

// Reduction terms (reduce.cu, chunk.cu, RMSNorm): the double term of one element, |a|, a*a, or a*c
// (products of widened floats, rounded once).
#define MF_ABS 0
#define MF_SQUARE 1
#define MF_PRODUCT 2

template <int KIND>
__device__ __forceinline__ double mf_term(float a, float c) {
    if (KIND == MF_ABS) return fabs((double) a);
    if (KIND == MF_SQUARE) return __dmul_rn((double) a, (double) a);
    return __dmul_rn((double) a, (double) c);
}
#endif

#endif
