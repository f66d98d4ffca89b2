// The kernels of kernels/*.cu built for the host on top of cuda_host_shim.h, launched through
// emu_launch with cuLaunchKernel's parameter convention (an array of pointers to the values).
// CudaEmulatedConformanceTest loads it with FFM and runs the CUDA backend's whole host side on it.
// Build: g++ -std=c++17 -O0 -shared -fPIC -ffp-contract=off -o libmfemu.so mf_emulator.cpp
// (-O0: __shared__ statics are rewritten by other fibers across __syncthreads, so no value may
// be kept in a register across a call; optimised builds could assume otherwise.)
#include "cuda_host_shim.h"

#include <cstdio>
#include <functional>
#include <string>
#include <ucontext.h>
#include <utility>
#include <vector>

#include "../convert.cu"
#include "../elementwise.cu"
#include "../reduce.cu"
#include "../select.cu"
#include "../dare.cu"
#include "../ties.cu"
#include "../aim.cu"
#include "../calib.cu"

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {
struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    bool done = false;
};

ucontext_t scheduler;
std::vector<Fiber> fibers;
unsigned int current = 0;
bool inFiber = false;
std::function<void()> body;
// __ballot_sync votes: call k of a thread uses slot k % 3 (see __ballot_sync)
unsigned int ballot[3][32];
unsigned int ballotCalls[1024];
std::string error;

void trampoline() {
    body();
    fibers[current].done = true;
    swapcontext(&fibers[current].ctx, &scheduler);
}

// Runs body once per thread of the block; a round resumes every live fiber until it reaches a
// barrier or ends, in ascending thread order on even rounds of even blocks and descending order
// otherwise, so that code which only works in one order (a missing barrier) shows up.
// A barrier some threads never reach is an error, as on a GPU.
void runBlockAsFibers(unsigned int n) {
    fibers.resize(n);
    for (unsigned int t = 0; t < n; t++) {
        Fiber& f = fibers[t];
        f.done = false;
        f.stack.resize(256 * 1024);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, trampoline, 0);
    }
    inFiber = true;
    std::fill(std::begin(ballotCalls), std::end(ballotCalls), 0u);
    for (auto& slot : ballot) std::fill(std::begin(slot), std::end(slot), 0u);  // the last call's slot is never cleared
    for (unsigned int round = 0;; round++) {
        unsigned int finished = 0, waiting = 0;
        bool descending = ((round + blockIdx.x) & 1) != 0;
        for (unsigned int i = 0; i < n; i++) {
            unsigned int t = descending ? n - 1 - i : i;
            if (fibers[t].done) continue;
            current = t;
            threadIdx.x = t;
            swapcontext(&scheduler, &fibers[t].ctx);
            if (fibers[t].done) finished++; else waiting++;
        }
        if (waiting == 0) break;
        if (finished != 0) { error = "threads of a block disagree on reaching __syncthreads"; break; }
    }
    inFiber = false;
}

struct Entry {
    std::function<void(void**)> call;
    bool usesBarriers;
};

template <typename... A, size_t... I>
void invoke(void (*k)(A...), void** p, std::index_sequence<I...>) {
    k(*static_cast<std::decay_t<A>*>(p[I])...);
}

template <typename... A>
Entry entry(void (*k)(A...), bool usesBarriers) {
    return {[k](void** p) { invoke(k, p, std::index_sequence_for<A...>{}); }, usesBarriers};
}

Entry* find(const std::string& name) {
    static std::vector<std::pair<std::string, Entry>> table = {
        {"mf_load_bf16", entry(mf_load_bf16, false)}, {"mf_load_f16", entry(mf_load_f16, false)},
        {"mf_store_bf16", entry(mf_store_bf16, false)}, {"mf_store_f16", entry(mf_store_f16, false)},
        {"mf_sub", entry(mf_sub, false)}, {"mf_add", entry(mf_add, false)}, {"mf_scale", entry(mf_scale, false)},
        {"mf_div_scalar", entry(mf_div_scalar, false)}, {"mf_axpy", entry(mf_axpy, false)}, {"mf_lerp", entry(mf_lerp, false)},
        {"mf_weighted_sum", entry(mf_weighted_sum, false)},
        {"mf_block_sum_abs", entry(mf_block_sum_abs, false)}, {"mf_block_sum_squares", entry(mf_block_sum_squares, false)},
        {"mf_block_dot", entry(mf_block_dot, false)},
        {"mf_radix_hist", entry(mf_radix_hist, true)}, {"mf_eq_count", entry(mf_eq_count, true)},
        {"mf_keep_rank_mask", entry(mf_keep_rank_mask, true)},
        {"mf_philox_drop", entry(mf_philox_drop, false)},
        {"mf_elect_sign", entry(mf_elect_sign, false)}, {"mf_disjoint_merge", entry(mf_disjoint_merge, false)},
        {"mf_relax", entry(mf_relax, false)},
        {"mf_rmsnorm", entry(mf_rmsnorm, false)}, {"mf_rope", entry(mf_rope, false)},
        {"mf_attention", entry(mf_attention, false)}, {"mf_silu_mul", entry(mf_silu_mul, false)},
        {"mf_bias_add", entry(mf_bias_add, false)}, {"mf_abs_sum_cols", entry(mf_abs_sum_cols, false)},
    };
    for (auto& e : table) if (e.first == name) return &e.second;
    return nullptr;
}
}  // namespace

void __syncthreads() {
    if (!inFiber) { error = "__syncthreads in a kernel the emulator runs without barriers"; return; }
    swapcontext(&fibers[current].ctx, &scheduler);
}

// Every thread of the block must call it the same number of times (true of the kernels). Call k
// votes into slot k % 3, waits for all votes, reads, and lane 0 clears slot (k + 2) % 3: that slot
// was read by call k - 1 before this barrier and is next voted into by call k + 2, after the next.
unsigned int __ballot_sync(unsigned int, int pred) {
    unsigned int w = threadIdx.x / 32, l = threadIdx.x % 32, k = ballotCalls[threadIdx.x]++;
    if (pred) ballot[k % 3][w] |= 1u << l;
    __syncthreads();
    unsigned int r = ballot[k % 3][w];
    if (l == 0) ballot[(k + 2) % 3][w] = 0;
    return r;
}

// Runs kernel `name` on grid x block threads; returns 0, or -1 with a message in err.
extern "C" int emu_launch(const char* name, unsigned int grid, unsigned int block, void** params, char* err, int errLen) {
    Entry* e = find(name);
    error.clear();
    if (e == nullptr) error = std::string("no kernel named ") + name;
    else if (block == 0 || block > 1024 || (e->usesBarriers && block % 32 != 0)) error = "bad block size";
    if (error.empty()) {
        gridDim.x = grid;
        blockDim.x = block;
        for (unsigned int b = 0; b < grid && error.empty(); b++) {
            blockIdx.x = b;
            if (e->usesBarriers) {
                body = [e, params] { e->call(params); };
                runBlockAsFibers(block);
            } else {
                for (unsigned int t = 0; t < block; t++) {
                    threadIdx.x = t;
                    e->call(params);
                }
            }
        }
    }
    if (error.empty()) return 0;
    std::snprintf(err, (size_t) errLen, "%s", error.c_str());
    return -1;
}
