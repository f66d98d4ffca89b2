// A host emulation of the CUDA features the kernels use, so that the real kernel sources run on a
// CPU in tests (no GPU in the development sessions) and can FAIL on the bugs a GPU shows.
// What it guarantees (docs/cuda.md, "What the emulator checks"):
//  * the threads of a block that cooperate (shared memory, barriers, atomics, warp ops) run as
//    fibers switched at every barrier, atomic and warp op in a seeded random order; blocks run one
//    at a time in a seeded random order; independent-thread kernels run their threads in a seeded
//    random order;
//  * shared memory (declared with MF_SHARED / MF_SHARED_VAR, kernels/mf_common.cuh) is per block,
//    starts as garbage, and every access is bounds-checked, checked for reading never-written
//    cells, and checked for data races: two accesses by different threads to one cell, at least
//    one a plain write (or one atomic and one plain), with no __syncthreads between them and no
//    warp op that synchronised both lanes, fail the launch naming the kernel, array, index, threads;
//  * atomics are atomic (also for ThreadSanitizer); warp ops honour their masks, wait only for the
//    lanes they name, and fail when the calling lane is not in the mask or a lane reads a lane
//    that does not take part; __syncthreads is counted: a thread that exits, or waits at another
//    barrier, while others wait at one fails the launch instead of hanging.
// Floating point is plain IEEE float/double on SSE (built with -ffp-contract=off), the same
// round-to-nearest operations the _rn intrinsics are. Not checked: races on global memory (only
// under ThreadSanitizer: kernels/host/emu_selftest.cpp, and the Java-driven CudaEmulatedTsanTest),
// memory ordering, timing, coalescing.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

struct dim3 { unsigned int x = 1, y = 1, z = 1; };
extern dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __CUDACC__ 1
#define MF_EMULATOR 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Plain __shared__ would be one static shared by every block and never checked.
#define __shared__ _Pragma("GCC error \"declare shared memory with MF_SHARED or MF_SHARED_VAR (kernels/mf_common.cuh) so the emulator can check it\"")

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
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }

// ---- the runtime (kernels/host/mf_emulator.cpp)
namespace mfemu {
enum Access { READ = 0, WRITE = 1, ATOMIC = 2 };
enum WarpOp { BALLOT, ALL, ANY, SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR, SYNCWARP };
struct SharedInfo;
// Per-block storage for one shared declaration (key: a static unique to the declaration).
SharedInfo* sharedBind(const void* key, const char* name, size_t elemSize, size_t count, const char* file, int line);
char* sharedBase(SharedInfo* a);
// Checks one access of element i (bounds, initialised, races); fails the launch on a violation.
void sharedAccess(SharedInfo* a, long long i, Access kind);
// A point where another thread of the block may run (random, seeded).
void yieldPoint();
// An atomic's scheduling point and its check that it runs in a launch.
void atomicPoint();
// __syncthreads and its _count form: the number of threads whose pred was non-zero.
unsigned int barrier(int pred, const char* file, int line);
// A warp collective: waits for the lanes of mask, then returns this lane's result.
unsigned long long warpOp(WarpOp op, unsigned int mask, unsigned long long value, int arg, int width, const char* file, int line);
// true while a launch of a cooperating kernel runs (atomics may switch threads)
bool inFiber();

template <typename T> struct Same { typedef T type; };

template <typename T>
struct SharedPtr;

// One element of a shared array: every read and write goes through sharedAccess.
template <typename T>
struct SharedRef {
    SharedInfo* a;
    long long i;
    T* ptr() const { return reinterpret_cast<T*>(sharedBase(a)) + i; }
    operator T() const { sharedAccess(a, i, READ); return *ptr(); }
    const SharedRef& operator=(T v) const { sharedAccess(a, i, WRITE); *ptr() = v; return *this; }
    const SharedRef& operator=(const SharedRef& o) const { T v = o; return *this = v; }
    // a plain read-modify-write is a read, a chance for another thread to run, and a write
    template <typename U> const SharedRef& operator+=(U v) const { T o = *this; yieldPoint(); return *this = (T) (o + v); }
    template <typename U> const SharedRef& operator-=(U v) const { T o = *this; yieldPoint(); return *this = (T) (o - v); }
    template <typename U> const SharedRef& operator*=(U v) const { T o = *this; yieldPoint(); return *this = (T) (o * v); }
    template <typename U> const SharedRef& operator|=(U v) const { T o = *this; yieldPoint(); return *this = (T) (o | v); }
    template <typename U> const SharedRef& operator&=(U v) const { T o = *this; yieldPoint(); return *this = (T) (o & v); }
    template <typename U> const SharedRef& operator^=(U v) const { T o = *this; yieldPoint(); return *this = (T) (o ^ v); }
    const SharedRef& operator++() const { return *this += 1; }
    const SharedRef& operator--() const { return *this -= 1; }
    T operator++(int) const { T o = *this; *this += 1; return o; }
    T operator--(int) const { T o = *this; *this -= 1; return o; }
    SharedPtr<T> operator&() const { return SharedPtr<T>{a, i}; }
};

// A pointer into a shared array (what &h[i] gives): for atomics and pointer arithmetic.
template <typename T>
struct SharedPtr {
    SharedInfo* a;
    long long i;
    SharedRef<T> operator*() const { return SharedRef<T>{a, i}; }
    SharedRef<T> operator[](long long k) const { return SharedRef<T>{a, i + k}; }
    SharedPtr operator+(long long k) const { return SharedPtr{a, i + k}; }
    SharedPtr operator-(long long k) const { return SharedPtr{a, i - k}; }
};

// MF_SHARED(T, name, n): the block's array, constructed by each thread at the declaration.
template <typename T, size_t N>
struct SharedArray {
    SharedInfo* a;
    SharedArray(const void* key, const char* name, const char* file, int line)
        : a(sharedBind(key, name, sizeof(T), N, file, line)) { }
    SharedArray(const SharedArray&) = delete;
    SharedRef<T> operator[](long long k) const { return SharedRef<T>{a, k}; }
    SharedPtr<T> operator+(long long k) const { return SharedPtr<T>{a, k}; }
    operator SharedPtr<T>() const { return SharedPtr<T>{a, 0}; }
};

// MF_SHARED_VAR(T, name): a shared scalar, used like a T.
template <typename T>
struct SharedVar : SharedRef<T> {
    SharedVar(const void* key, const char* name, const char* file, int line)
        : SharedRef<T>{sharedBind(key, name, sizeof(T), 1, file, line), 0} { }
    SharedVar(const SharedVar&) = delete;
    const SharedVar& operator=(T v) const { SharedRef<T>::operator=(v); return *this; }
};

// An atomic read-modify-write: new = f(old), returns old; atomic also for ThreadSanitizer.
template <typename T, typename F>
T atomicRmw(T* p, F f) {
    atomicPoint();
    T old, next;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do { next = f(old); } while (!__atomic_compare_exchange(p, &old, &next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}

template <typename T, typename F>
T atomicRmw(SharedPtr<T> s, F f) {
    atomicPoint();
    sharedAccess(s.a, s.i, ATOMIC);
    T* p = (*s).ptr();
    T old, next;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do { next = f(old); } while (!__atomic_compare_exchange(p, &old, &next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}

template <typename T> T bitsAs(unsigned long long b) { T v; std::memcpy(&v, &b, sizeof(T)); return v; }
template <typename T> unsigned long long asBits(T v) { unsigned long long b = 0; std::memcpy(&b, &v, sizeof(T)); return b; }

template <typename T>
T shfl(const char* file, int line, WarpOp op, unsigned int mask, T v, int arg, int width = 32) {
    static_assert(sizeof(T) <= 8, "__shfl of a type wider than 8 bytes");
    return bitsAs<T>(warpOp(op, mask, asBits(v), arg, width, file, line));
}

// __syncwarp(mask = all lanes) as SyncWarpAt(file, line)(mask)
struct SyncWarpAt {
    const char* file;
    int line;
    SyncWarpAt(const char* f, int l) : file(f), line(l) { }
    void operator()(unsigned int mask = 0xffffffffu) const { warpOp(SYNCWARP, mask, 0, 0, 32, file, line); }
};
}  // namespace mfemu

#define MF_SHARED(T, name, n) static char name##_mf_key; mfemu::SharedArray<T, (size_t) (n)> name(&name##_mf_key, #name, __FILE__, __LINE__)
#define MF_SHARED_VAR(T, name) static char name##_mf_key; mfemu::SharedVar<T> name(&name##_mf_key, #name, __FILE__, __LINE__)

// pointer (T*) or shared pointer; the value converts to the pointee type as CUDA's overloads do
template <typename T> T atomicAdd(T* p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o + v); }); }
template <typename T> T atomicAdd(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o + v); }); }
template <typename T> T atomicSub(T* p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o - v); }); }
template <typename T> T atomicSub(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o - v); }); }
template <typename T> T atomicMax(T* p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return o < v ? v : o; }); }
template <typename T> T atomicMax(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return o < v ? v : o; }); }
template <typename T> T atomicMin(T* p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return v < o ? v : o; }); }
template <typename T> T atomicMin(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return v < o ? v : o; }); }
template <typename T> T atomicOr(T* p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o | v); }); }
template <typename T> T atomicOr(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o | v); }); }
template <typename T> T atomicAnd(T* p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o & v); }); }
template <typename T> T atomicAnd(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return (T) (o & v); }); }
template <typename T> T atomicExch(T* p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T) { return v; }); }
template <typename T> T atomicExch(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T) { return v; }); }
template <typename T> T atomicCAS(T* p, typename mfemu::Same<T>::type cmp, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return o == cmp ? v : o; }); }
template <typename T> T atomicCAS(mfemu::SharedPtr<T> p, typename mfemu::Same<T>::type cmp, typename mfemu::Same<T>::type v) { return mfemu::atomicRmw(p, [&](T o) { return o == cmp ? v : o; }); }

#define __syncthreads() ((void) mfemu::barrier(0, __FILE__, __LINE__))
#define __syncthreads_count(p) ((int) mfemu::barrier((p) != 0, __FILE__, __LINE__))
#define __syncthreads_or(p) ((int) (mfemu::barrier((p) != 0, __FILE__, __LINE__) != 0))
#define __syncthreads_and(p) ((int) (mfemu::barrier((p) != 0, __FILE__, __LINE__) == blockDim.x * blockDim.y * blockDim.z))
#define __ballot_sync(m, p) ((unsigned int) mfemu::warpOp(mfemu::BALLOT, (m), (p) != 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(m, p) ((int) mfemu::warpOp(mfemu::ALL, (m), (p) != 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(m, p) ((int) mfemu::warpOp(mfemu::ANY, (m), (p) != 0, 0, 32, __FILE__, __LINE__))
#define __shfl_sync(...) mfemu::shfl(__FILE__, __LINE__, mfemu::SHFL_IDX, __VA_ARGS__)
#define __shfl_up_sync(...) mfemu::shfl(__FILE__, __LINE__, mfemu::SHFL_UP, __VA_ARGS__)
#define __shfl_down_sync(...) mfemu::shfl(__FILE__, __LINE__, mfemu::SHFL_DOWN, __VA_ARGS__)
#define __shfl_xor_sync(...) mfemu::shfl(__FILE__, __LINE__, mfemu::SHFL_XOR, __VA_ARGS__)
#define __syncwarp mfemu::SyncWarpAt(__FILE__, __LINE__)
#define __threadfence() mfemu::yieldPoint()
#define __threadfence_block() mfemu::yieldPoint()
