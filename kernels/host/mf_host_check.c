// Host build of the kernels' scalar helpers (kernels/mf_common.cuh compiled as plain C), so that
// CudaScalarHostTest can check them bit for bit against the Java reference without a GPU.
// Built by the test itself: gcc -std=c11 -O2 -shared -fPIC -ffp-contract=off.
#include "../mf_common.cuh"

void mfh_bf16_to_f32(const unsigned short* in, float* out, long n) {
    for (long i = 0; i < n; i++) out[i] = mf_bf16_to_f32(in[i]);
}

void mfh_f16_to_f32(const unsigned short* in, float* out, long n) {
    for (long i = 0; i < n; i++) out[i] = mf_f16_to_f32(in[i]);
}

void mfh_f32_to_bf16(const float* in, unsigned short* out, long n) {
    for (long i = 0; i < n; i++) out[i] = mf_f32_to_bf16(in[i]);
}

void mfh_f32_to_f16(const float* in, unsigned short* out, long n) {
    for (long i = 0; i < n; i++) out[i] = mf_f32_to_f16(in[i]);
}

// in: n records (c0, c1, k0, k1); out: n blocks of 4 outputs
void mfh_philox(const unsigned int* in, unsigned int* out, long n) {
    for (long i = 0; i < n; i++) mf_philox(in[4 * i], in[4 * i + 1], in[4 * i + 2], in[4 * i + 3], out + 4 * i);
}

// kernels/mf_explog.cuh's exp and log over n doubles
#include "../mf_explog.cuh"

void mfh_exp(const double* in, double* out, long n) {
    for (long i = 0; i < n; i++) out[i] = mf_exp(in[i]);
}

void mfh_log(const double* in, double* out, long n) {
    for (long i = 0; i < n; i++) out[i] = mf_log(in[i]);
}
