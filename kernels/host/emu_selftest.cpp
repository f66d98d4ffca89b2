// Checks of the host emulator itself and of the cooperating kernels (select.cu) against plain serial
// references, as one program so that it can also be built with -fsanitize=thread: ThreadSanitizer
// then sees every fiber as a thread and reports races on global memory too, which the emulator's
// own checks (shared memory only) cannot see. CudaEmulatorSelfTest builds and runs it, plain and
// under ThreadSanitizer.
// Build: g++ -std=c++17 -O1 -ffp-contract=off -DMFEMU_SELECT_ONLY [-fsanitize=thread] -o emu_selftest emu_selftest.cpp
// Run: emu_selftest [seed]            -> one line per check, exit status 1 if any failed
//      emu_selftest --global-race     -> a kernel with a race on global memory (ThreadSanitizer must report it)
#include "cuda_host_shim.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// ---- small kernels that break the rules, each of which the emulator must report
extern "C" __global__ void t_exit_before_barrier(int* out) {
    if (threadIdx.x == 5) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

extern "C" __global__ void t_divergent_barriers(int* out) {
    if (threadIdx.x < 32) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1;
}

extern "C" __global__ void t_ballot_outside_mask(int* out) {
    out[threadIdx.x] = (int) __ballot_sync(0x0000ffffu, 1);
}

// lanes 0-15 sync among themselves while 16-31 sync among themselves: legal, and neither half may
// wait for the other (the second half then waits at a barrier the first half reaches later)
extern "C" __global__ void t_half_warps(int* out) {
    unsigned int lane = threadIdx.x % 32;
    unsigned int mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
    unsigned int b = __ballot_sync(mask, lane % 2 == 0);
    out[threadIdx.x] = (int) b;
    __syncthreads();
}

// a warp sync that names the writer's and the reader's lanes orders their shared accesses
extern "C" __global__ void t_warp_ordered(int* out) {
    MF_SHARED(int, s, 32);
    unsigned int lane = threadIdx.x % 32;
    s[lane] = (int) lane;
    __syncwarp();
    out[threadIdx.x] = s[(lane + 1) % 32];
}

// the same without the __syncwarp: a race (only one warp, so no __syncthreads covers it)
extern "C" __global__ void t_warp_unordered(int* out) {
    MF_SHARED(int, s, 32);
    unsigned int lane = threadIdx.x % 32;
    s[lane] = (int) lane;
    out[threadIdx.x] = s[(lane + 1) % 32];
}

// a ballot of half the warp does not order the other half's accesses
extern "C" __global__ void t_ballot_is_not_a_barrier(int* out) {
    MF_SHARED(int, s, 64);
    s[threadIdx.x] = (int) threadIdx.x;
    unsigned int b = __ballot_sync(0xffffffffu, 1);
    out[threadIdx.x] = s[(threadIdx.x + 32) % 64] + (int) (b & 0);
}

extern "C" __global__ void t_uninitialised_shared(int* out) {
    MF_SHARED(int, s, 64);
    out[threadIdx.x] = s[threadIdx.x];
}

extern "C" __global__ void t_out_of_bounds_shared(int* out) {
    MF_SHARED(int, s, 64);
    s[threadIdx.x + 1] = 1;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

extern "C" __global__ void t_shuffles(int* out) {
    int lane = (int) (threadIdx.x % 32);
    int v = 100 + lane;
    out[4 * threadIdx.x + 0] = __shfl_sync(0xffffffffu, v, 3);
    out[4 * threadIdx.x + 1] = __shfl_down_sync(0xffffffffu, v, 4);
    out[4 * threadIdx.x + 2] = __shfl_up_sync(0xffffffffu, v, 1, 8);
    out[4 * threadIdx.x + 3] = __shfl_xor_sync(0xffffffffu, v, 1);
}

extern "C" __global__ void t_shared_atomics(int* out) {
    MF_SHARED_VAR(int, count);
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    atomicAdd(&count, 1);
    __syncthreads();
    if (threadIdx.x == 0) out[0] = count;
}

extern "C" __global__ void t_shared_plain_increment(int* out) {
    MF_SHARED_VAR(int, count);
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    count += 1;
    __syncthreads();
    if (threadIdx.x == 0) out[0] = count;
}

// lanes 0-15 wait at a warp sync naming the whole warp while lanes 16-31 wait at a barrier: neither can go on
extern "C" __global__ void t_deadlock(int* out) {
    if (threadIdx.x % 32 < 16) __syncwarp();
    __syncthreads();
    out[threadIdx.x] = 1;
}

// half the warp shuffles from the other half, which does not take part
extern "C" __global__ void t_shfl_from_absent_lane(int* out) {
    unsigned int lane = threadIdx.x % 32;
    if (lane < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, (int) lane, (int) lane + 16);
}

// two threads of a block write one global word with no order: only ThreadSanitizer can see it
extern "C" __global__ void t_global_race(int* out) {
    if (threadIdx.x < 2) out[0] = (int) threadIdx.x;
}

#define MFEMU_EXTRA_ENTRIES                                                                                      \
    {"t_exit_before_barrier", entry(t_exit_before_barrier, true)},                                               \
    {"t_divergent_barriers", entry(t_divergent_barriers, true)},                                                 \
    {"t_ballot_outside_mask", entry(t_ballot_outside_mask, true)}, {"t_half_warps", entry(t_half_warps, true)},  \
    {"t_warp_ordered", entry(t_warp_ordered, true)}, {"t_warp_unordered", entry(t_warp_unordered, true)},        \
    {"t_ballot_is_not_a_barrier", entry(t_ballot_is_not_a_barrier, true)},                                       \
    {"t_uninitialised_shared", entry(t_uninitialised_shared, true)},                                             \
    {"t_out_of_bounds_shared", entry(t_out_of_bounds_shared, true)}, {"t_shuffles", entry(t_shuffles, true)},    \
    {"t_shared_atomics", entry(t_shared_atomics, true)},                                                         \
    {"t_shared_plain_increment", entry(t_shared_plain_increment, true)},                                         \
    {"t_global_race", entry(t_global_race, true)}, {"t_deadlock", entry(t_deadlock, true)},                     \
    {"t_shfl_from_absent_lane", entry(t_shfl_from_absent_lane, true)},
#include "mf_emulator.cpp"

namespace {
int failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok" : "FAIL", what.c_str());
    if (!ok) failures++;
}

std::string launch(const char* name, unsigned int grid, unsigned int block, std::vector<void*> params) {
    char err[1024] = {0};
    int rc = emu_launch(name, grid, block, params.data(), err, sizeof err);
    return rc == 0 ? std::string() : std::string(err);
}

void expectError(const char* kernel, unsigned int block, const char* needle) {
    std::vector<int> out(4 * 1024, 0);
    int* p = out.data();
    std::string e = launch(kernel, 1, block, {&p});
    check(e.find(needle) != std::string::npos, std::string(kernel) + " is reported (\"" + needle + "\"): " + (e.empty() ? "no error" : e));
}

unsigned int absBits(float f) { return __float_as_uint(f) & 0x7fffffffu; }

// weight-like values with many repeated magnitudes (ties), zeros and both signs
std::vector<float> data(long long n, unsigned long long seed) {
    std::vector<float> v((size_t) n);
    unsigned long long s = seed;
    for (auto& x : v) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        unsigned int r = (unsigned int) (s >> 33);
        float m = r % 5 == 0 ? 0.015625f : r % 7 == 0 ? 0.0f : (float) (r % 1000) * 1e-4f;
        x = (r & 1) ? -m : m;
    }
    return v;
}

void selectKernels() {
    const long long n = 3 * 4096 + 77;
    std::vector<float> x = data(n, 42);
    const float* xp = x.data();
    long long nn = n;
    // one radix pass over the top 11 magnitude bits, and one 10-bit pass under two prefixes
    for (int pass = 0; pass < 2; pass++) {
        int shift = pass == 0 ? 20 : 10, bits = pass == 0 ? 11 : 10, ntargets = pass == 0 ? 1 : 2;
        unsigned int p0 = pass == 0 ? 0 : absBits(0.015625f) >> 20, p1 = pass == 0 ? 0 : absBits(0.05f) >> 20;
        std::vector<unsigned long long> hist(2 * 2048, 0), want(2 * 2048, 0);
        for (float f : x) {
            unsigned int a = absBits(f), hi = a >> (shift + bits), d = (a >> shift) & ((1u << bits) - 1u);
            if (hi == p0) want[d]++;
            if (ntargets > 1 && hi == p1) want[2048 + d]++;
        }
        unsigned long long* hp = hist.data();
        std::string e = launch("mf_radix_hist", 5, 256, {&xp, &nn, &shift, &bits, &p0, &p1, &ntargets, &hp});
        check(e.empty() && hist == want, "mf_radix_hist pass " + std::to_string(pass) + " equals a serial count " + e);
    }
    // equal-value counts per 4096-element chunk, then the rank mask with ties on both bounds
    unsigned int vUp = absBits(0.05f), vDn = absBits(0.015625f);
    int hasUpper = 1;
    long long chunks = (n + 4095) / 4096;
    std::vector<long long> cu(chunks), cd(chunks), wu(chunks, 0), wd(chunks, 0);
    for (long long i = 0; i < n; i++) {
        wu[i / 4096] += absBits(x[i]) == vUp;
        wd[i / 4096] += absBits(x[i]) == vDn;
    }
    long long* cup = cu.data();
    long long* cdp = cd.data();
    std::string e = launch("mf_eq_count", (unsigned int) chunks, 256, {&xp, &nn, &vUp, &hasUpper, &vDn, &cup, &cdp});
    check(e.empty() && cu == wu && cd == wd, "mf_eq_count equals a serial count " + e);
    std::vector<long long> su(chunks), sd(chunks);
    long long tu = 0, td = 0;
    for (long long c = 0; c < chunks; c++) { su[c] = tu; sd[c] = td; tu += wu[c]; td += wd[c]; }
    long long skipUp = tu / 3, keepDn = td / 2;
    std::vector<float> y = x, want = x;
    long long ru = 0, rd = 0;
    for (long long i = 0; i < n; i++) {
        unsigned int a = absBits(x[i]);
        bool keep = a <= vUp && a >= vDn;
        if (a == vUp && ru++ < skipUp) keep = false;
        if (a == vDn && rd++ >= keepDn) keep = false;
        if (!keep) want[i] = 0.0f;
    }
    float* yp = y.data();
    const long long* sup = su.data();
    const long long* sdp = sd.data();
    e = launch("mf_keep_rank_mask", (unsigned int) chunks, 256, {&yp, &nn, &vUp, &hasUpper, &skipUp, &vDn, &keepDn, &sup, &sdp});
    bool same = e.empty();
    for (long long i = 0; i < n && same; i++) same = __float_as_uint(y[i]) == __float_as_uint(want[i]);
    check(same, "mf_keep_rank_mask equals a serial rank walk " + e);
}

void warpSemantics() {
    std::vector<int> out(4 * 64, -1);
    int* p = out.data();
    std::string e = launch("t_shuffles", 1, 64, {&p});
    bool ok = e.empty();
    for (int t = 0; t < 64 && ok; t++) {
        int lane = t % 32;
        ok = out[4 * t] == 103 && out[4 * t + 1] == 100 + (lane + 4 < 32 ? lane + 4 : lane)
                && out[4 * t + 2] == 100 + (lane % 8 >= 1 ? lane - 1 : lane) && out[4 * t + 3] == 100 + (lane ^ 1);
    }
    check(ok, "__shfl_sync/__shfl_down_sync/__shfl_up_sync (width 8)/__shfl_xor_sync give CUDA's lanes " + e);
    std::fill(out.begin(), out.end(), -1);
    e = launch("t_half_warps", 1, 64, {&p});
    ok = e.empty();
    for (int t = 0; t < 64 && ok; t++) ok = (unsigned int) out[t] == (t % 32 < 16 ? 0x00005555u : 0x55550000u);
    check(ok, "__ballot_sync with half-warp masks waits only for the named lanes " + e);
    e = launch("t_warp_ordered", 1, 32, {&p});
    ok = e.empty();
    for (int t = 0; t < 32 && ok; t++) ok = out[t] == (t + 1) % 32;
    check(ok, "__syncwarp orders shared accesses of the lanes it names " + e);
    std::fill(out.begin(), out.end(), 0);
    e = launch("t_shared_atomics", 2, 96, {&p});
    check(e.empty() && out[0] == 96, "shared atomicAdd counts every thread " + e);
}
}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--global-race") {
        std::vector<int> out(64, 0);
        int* p = out.data();
        std::string e = launch("t_global_race", 1, 64, {&p});
        std::printf("t_global_race ran: %s\n", e.empty() ? "no emulator error" : e.c_str());
        return 0;
    }
    unsigned long long seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1;
    emu_set_seed(seed);
    std::printf("emulator seed %llu\n", seed);
    selectKernels();
    warpSemantics();
    expectError("t_exit_before_barrier", 64, "exited");  // "exited while ... wait", or "reaches ... after ... exited"
    expectError("t_divergent_barriers", 64, "a barrier some threads skip");
    expectError("t_ballot_outside_mask", 32, "does not name its own lane");
    expectError("t_warp_unordered", 32, "shared s[");  // a race, or a read before the write it races with
    expectError("t_ballot_is_not_a_barrier", 64, "data race on shared s[");
    expectError("t_uninitialised_shared", 64, "before any thread of the block wrote it");
    expectError("t_out_of_bounds_shared", 64, "out-of-bounds shared memory: writes s[64]");
    expectError("t_shared_plain_increment", 64, "data race on shared count[0]");
    expectError("t_deadlock", 64, "deadlock: ");
    expectError("t_shfl_from_absent_lane", 32, "which does not take part");
    std::printf("%s: %d failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
