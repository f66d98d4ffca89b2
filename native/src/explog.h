/*
 * Our own exp and log in double (docs/methods.md, "Our exp and log"): the operations of
 * dev.mergeforge.backend.ExpLog in the same order, so the same bits for every input. No FMA (the
 * library is compiled with -ffp-contract=off), no tables, no branches: the loops that call them
 * vectorise (integer operations on the bits stand in for the int/double conversions AVX2 lacks).
 * exp: within 1 ulp of StrictMath on [-708, 709], +0.0 below -708; log: within 1 ulp for positive
 * normal x. Other inputs are unspecified (the KL never meets them).
 */
#ifndef MO_EXPLOG_H
#define MO_EXPLOG_H

#include <stdint.h>
#include <string.h>

static inline uint64_t mo_dbits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static inline double mo_dfrom(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

/* e^x: x = n ln2 + r (Cody-Waite, ln2 in a 42-bit head and a tail), e^r by Taylor to r^13/13! (Horner), times 2^n from the bits. */
static inline __attribute__((always_inline)) double mo_exp(double x) {
    const double shifter = 0x1.8p52;
    // n = round(x log2 e) in the low bits of t, and exactly as a double
    double t = x * 0x1.71547652b82fep0 + shifter;
    double n = t - shifter;
    double r = (x - n * 0x1.62e42fefa38p-1) - n * 0x1.ef35793c7673p-45;
    double p = 0x1.6124613a86d09p-33;
    p = 0x1.1eed8eff8d898p-29 + r * p;
    p = 0x1.ae64567f544e4p-26 + r * p;
    p = 0x1.27e4fb7789f5cp-22 + r * p;
    p = 0x1.71de3a556c734p-19 + r * p;
    p = 0x1.a01a01a01a01ap-16 + r * p;
    p = 0x1.a01a01a01a01ap-13 + r * p;
    p = 0x1.6c16c16c16c17p-10 + r * p;
    p = 0x1.1111111111111p-7 + r * p;
    p = 0x1.5555555555555p-5 + r * p;
    p = 0x1.5555555555555p-3 + r * p;
    p = 0.5 + r * p;
    p = 1.0 + r * p;
    p = 1.0 + r * p;
    // 2^n: n + 1023 in the exponent field
    double scale = mo_dfrom((mo_dbits(t) + 1023u) << 52);
    double y = p * scale;
    // +0.0 below -708 (NaN kept): a mask, not a branch, so that the loops vectorise
    uint64_t drop = (uint64_t)0 - (uint64_t)(x < -708.0);
    return mo_dfrom(mo_dbits(y) & ~drop);
}

/* ln x: x = 2^k m, m in [sqrt(1/2), sqrt(2)); f = m - 1, s = f/(2 + f), ln m = f - s(f - R), R = 2s^2/3 + ... + 2s^20/21. */
static inline __attribute__((always_inline)) double mo_log(double x) {
    uint64_t bits = mo_dbits(x);
    // u >> 52 = 1022 + k
    uint64_t e = (bits - 0x6a09e667f3bcdull) >> 52;
    double m = mo_dfrom(bits - (e << 52) + (1022ull << 52));
    double k = mo_dfrom(e | 0x4330000000000000ull) - 0x1.00000000003fep52;
    double f = m - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double q = 0x1.8618618618618p-4;
    q = 0x1.af286bca1af28p-4 + z * q;
    q = 0x1.e1e1e1e1e1e1ep-4 + z * q;
    q = 0x1.1111111111111p-3 + z * q;
    q = 0x1.3b13b13b13b14p-3 + z * q;
    q = 0x1.745d1745d1746p-3 + z * q;
    q = 0x1.c71c71c71c71cp-3 + z * q;
    q = 0x1.2492492492492p-2 + z * q;
    q = 0x1.999999999999ap-2 + z * q;
    q = 0x1.5555555555555p-1 + z * q;
    double rr = z * q;
    return k * 0x1.62e42fefa38p-1 + (f - (s * (f - rr) - k * 0x1.ef35793c7673p-45));
}

#endif
