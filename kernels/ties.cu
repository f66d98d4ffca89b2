// TIES sign election and disjoint merge over k weighted task vectors (device pointer array xs).
#include "mf_common.cuh"

// sign[i] = +1 if s >= 0 else -1, s = xs[0][i] + xs[1][i] + ... left to right in float32
extern "C" __global__ void mf_elect_sign(const float* const* xs, int k, float* sign, long long n) {
    MF_FOR(i, n) {
        float s = xs[0][i];
        for (int j = 1; j < k; j++) s = __fadd_rn(s, xs[j][i]);
        sign[i] = s >= 0.0f ? 1.0f : -1.0f;
    }
}

// acc = sum of xs[j][i] whose sign (+1, -1, 0) equals sign[i]; div = sum of their w[j];
// out[i] = acc, or acc / (div == 0 ? 1 : div) when normalize. out may alias any input.
extern "C" __global__ void mf_disjoint_merge(const float* const* xs, const float* w, int k, const float* sign,
                                             int normalize, float* out, long long n) {
    MF_FOR(i, n) {
        float s = sign[i];
        float acc = 0.0f, div = 0.0f;
        for (int j = 0; j < k; j++) {
            float v = xs[j][i];
            float sv = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
            if (sv == s) {
                acc = __fadd_rn(acc, v);
                div = __fadd_rn(div, w[j]);
            }
        }
        if (normalize) acc = __fdiv_rn(acc, div == 0.0f ? 1.0f : div);
        out[i] = acc;
    }
}
