// AIM relaxation (docs/aim.md, "The relaxation"): out = base + ((merged - base) * f), f = 1 - keep * imp[c];
// exactly merged where f == 1 and exactly base where f == 0.
#include "mf_common.cuh"

// axis 0 = COLUMNS (c = i mod cols), 1 = ROWS (c = i / cols), 2 = ELEMENTS (c = i); keep = 1 - omega
// computed by the caller in float32. out may alias merged.
extern "C" __global__ void mf_relax(const float* base, const float* merged, const float* imp, float keep,
                                    int axis, long long cols, float* out, long long n) {
    MF_FOR(i, n) {
        long long c = axis == 0 ? i % cols : (axis == 1 ? i / cols : i);
        // f = 1 - (keep * imp[c])
        float f = __fsub_rn(1.0f, __fmul_rn(keep, imp[c]));
        float b = base[i], m = merged[i];
        // d = merged - base; out = base + (d * f), the ends exact
        float d = __fsub_rn(m, b);
        out[i] = f == 1.0f ? m : (f == 0.0f ? b : __fadd_rn(b, __fmul_rn(d, f)));
    }
}
