// A minimal host emulation of the CUDA features the kernels use, so that the real kernel sources
// can run on a CPU in tests (no GPU in the development sessions). Blocks run one after another;
// the threads of a block are fibers (ucontext) on one OS thread, switched only at __syncthreads
// and __ballot_sync, in ascending thread order. Floating point is plain IEEE float/double on
// SSE (build with -ffp-contract=off), the same round-to-nearest operations the _rn intrinsics are.
// This checks the kernels' logic (indexing, grid-stride loops, histogram and tie ranking, barriers
// used as written); it does not check timing, memory coalescing, or races a real GPU could show.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

struct dim3 { unsigned int x = 1, y = 1, z = 1; };
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __CUDACC__ 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

using std::min;
using std::max;

struct alignas(16) float4 { float x, y, z, w; };

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline float __double2float_rn(double a) { return (float) a; }
inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline double __longlong_as_double(long long u) { double d; std::memcpy(&d, &u, 8); return d; }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
// one OS thread: atomics are plain read-modify-write
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { unsigned int o = *p; *p = o + v; return o; }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { unsigned long long o = *p; *p = o + v; return o; }

void __syncthreads();
unsigned int __ballot_sync(unsigned int mask, int pred);
