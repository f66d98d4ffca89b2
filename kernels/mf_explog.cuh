// Our own exp and log in double (docs/methods.md, "Our exp and log"): the operations of
// dev.mergeforge.backend.ExpLog (and native/src/explog.h) in the same order, each an explicit
// round-to-nearest operation, so a GPU gives the CPU's bits for every input. No tables, no
// branches. exp: within 1 ulp of StrictMath on [-708, 709], +0.0 below -708; log: within 1 ulp
// for positive normal x. CudaScalarHostTest compiles this as plain C and compares it with ExpLog.
#ifndef MF_EXPLOG_CUH
#define MF_EXPLOG_CUH
#include "mf_common.cuh"

#ifdef __CUDACC__
#define MF_DADD(a, b) __dadd_rn((a), (b))
#define MF_DSUB(a, b) __dsub_rn((a), (b))
#define MF_DMUL(a, b) __dmul_rn((a), (b))
#define MF_DDIV(a, b) __ddiv_rn((a), (b))
#else
#define MF_DADD(a, b) ((a) + (b))
#define MF_DSUB(a, b) ((a) - (b))
#define MF_DMUL(a, b) ((a) * (b))
#define MF_DDIV(a, b) ((a) / (b))
#endif

#ifdef __CUDA_ARCH__
#define MF_D2U(d) ((mf_u64) __double_as_longlong(d))
#define MF_U2D(u) __longlong_as_double((long long) (u))
#else
MF_HD mf_u64 mf_d2u_host(double d) { mf_u64 u; memcpy(&u, &d, 8); return u; }
MF_HD double mf_u2d_host(mf_u64 u) { double d; memcpy(&d, &u, 8); return d; }
#define MF_D2U(d) mf_d2u_host(d)
#define MF_U2D(u) mf_u2d_host(u)
#endif

// e^x: x = n ln2 + r (ln2 in a 42-bit head and a tail), e^r by Taylor to r^13/13! (Horner), times 2^n from the bits
MF_HD double mf_exp(double x) {
    const double shifter = 0x1.8p52;
    // n = round(x log2 e) in the low bits of t, and exactly as a double
    double t = MF_DADD(MF_DMUL(x, 0x1.71547652b82fep0), shifter);
    double n = MF_DSUB(t, shifter);
    double r = MF_DSUB(MF_DSUB(x, MF_DMUL(n, 0x1.62e42fefa38p-1)), MF_DMUL(n, 0x1.ef35793c7673p-45));
    double p = 0x1.6124613a86d09p-33;
    p = MF_DADD(0x1.1eed8eff8d898p-29, MF_DMUL(r, p));
    p = MF_DADD(0x1.ae64567f544e4p-26, MF_DMUL(r, p));
    p = MF_DADD(0x1.27e4fb7789f5cp-22, MF_DMUL(r, p));
    p = MF_DADD(0x1.71de3a556c734p-19, MF_DMUL(r, p));
    p = MF_DADD(0x1.a01a01a01a01ap-16, MF_DMUL(r, p));
    p = MF_DADD(0x1.a01a01a01a01ap-13, MF_DMUL(r, p));
    p = MF_DADD(0x1.6c16c16c16c17p-10, MF_DMUL(r, p));
    p = MF_DADD(0x1.1111111111111p-7, MF_DMUL(r, p));
    p = MF_DADD(0x1.5555555555555p-5, MF_DMUL(r, p));
    p = MF_DADD(0x1.5555555555555p-3, MF_DMUL(r, p));
    p = MF_DADD(0.5, MF_DMUL(r, p));
    p = MF_DADD(1.0, MF_DMUL(r, p));
    p = MF_DADD(1.0, MF_DMUL(r, p));
    // 2^n: n + 1023 in the exponent field
    double y = MF_DMUL(p, MF_U2D((MF_D2U(t) + 1023ull) << 52));
    // +0.0 below -708 (NaN kept)
    mf_u64 drop = 0ull - (mf_u64) (x < -708.0);
    return MF_U2D(MF_D2U(y) & ~drop);
}

// ln x: x = 2^k m, m in [sqrt(1/2), sqrt(2)); f = m - 1, s = f/(2 + f), ln m = f - s(f - R), R = 2s^2/3 + ... + 2s^20/21
MF_HD double mf_log(double x) {
    mf_u64 bits = MF_D2U(x);
    // e = 1022 + k
    mf_u64 e = (bits - 0x6a09e667f3bcdull) >> 52;
    double m = MF_U2D(bits - (e << 52) + (1022ull << 52));
    double k = MF_DSUB(MF_U2D(e | 0x4330000000000000ull), 0x1.00000000003fep52);
    double f = MF_DSUB(m, 1.0);
    double s = MF_DDIV(f, MF_DADD(2.0, f));
    double z = MF_DMUL(s, s);
    double q = 0x1.8618618618618p-4;
    q = MF_DADD(0x1.af286bca1af28p-4, MF_DMUL(z, q));
    q = MF_DADD(0x1.e1e1e1e1e1e1ep-4, MF_DMUL(z, q));
    q = MF_DADD(0x1.1111111111111p-3, MF_DMUL(z, q));
    q = MF_DADD(0x1.3b13b13b13b14p-3, MF_DMUL(z, q));
    q = MF_DADD(0x1.745d1745d1746p-3, MF_DMUL(z, q));
    q = MF_DADD(0x1.c71c71c71c71cp-3, MF_DMUL(z, q));
    q = MF_DADD(0x1.2492492492492p-2, MF_DMUL(z, q));
    q = MF_DADD(0x1.999999999999ap-2, MF_DMUL(z, q));
    q = MF_DADD(0x1.5555555555555p-1, MF_DMUL(z, q));
    double rr = MF_DMUL(z, q);
    return MF_DADD(MF_DMUL(k, 0x1.62e42fefa38p-1), MF_DSUB(f, MF_DSUB(MF_DMUL(s, MF_DSUB(f, rr)), MF_DMUL(k, 0x1.ef35793c7673p-45))));
}
#endif
