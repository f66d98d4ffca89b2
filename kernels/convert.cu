// dtype conversion kernels: load (stored dtype -> float32 working tile) and store (float32 ->
// stored dtype). Bit-exact with JavaBackend.load/store through the integer helpers of mf_common.cuh.
#include "mf_common.cuh"

// dst[i] = float32(bf16 src[i])
extern "C" __global__ void mf_load_bf16(const unsigned short* __restrict__ src, float* __restrict__ dst, long long n) {
    MF_FOR(i, n) dst[i] = mf_bf16_to_f32(src[i]);
}

// dst[i] = float32(f16 src[i])
extern "C" __global__ void mf_load_f16(const unsigned short* __restrict__ src, float* __restrict__ dst, long long n) {
    MF_FOR(i, n) dst[i] = mf_f16_to_f32(src[i]);
}

// dst[i] = bf16(src[i]), round to nearest even
extern "C" __global__ void mf_store_bf16(const float* __restrict__ src, unsigned short* __restrict__ dst, long long n) {
    MF_FOR(i, n) dst[i] = mf_f32_to_bf16(src[i]);
}

// dst[i] = f16(src[i]), round to nearest even
extern "C" __global__ void mf_store_f16(const float* __restrict__ src, unsigned short* __restrict__ dst, long long n) {
    MF_FOR(i, n) dst[i] = mf_f32_to_f16(src[i]);
}
