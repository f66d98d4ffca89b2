// The kernels of kernels/*.cu built for the host on top of cuda_host_shim.h, launched through
// emu_launch with cuLaunchKernel's parameter convention (an array of pointers to the values).
// EmulatedDevice (test code) loads it with FFM and runs the CUDA backend's whole host side on it;
// emu_selftest.cpp links it into a program that also runs under ThreadSanitizer.
// Build: g++ -std=c++17 -O1 -shared -fPIC -ffp-contract=off -o libmfemu.so mf_emulator.cpp
//
// Scheduling: blocks run one at a time, in a seeded random order. A cooperating kernel's block
// runs its threads as fibers on one OS thread (emu_runtime.h: a hand-written context switch on
// x86-64, ucontext elsewhere); at every barrier, atomic, warp op (and in
// the middle of a plain read-modify-write of shared memory) the running thread may hand over to
// a random runnable thread (seeded), so no thread order is assumed. Independent-thread kernels
// run each block's threads to completion one after another, in a seeded random order.
#include "cuda_host_shim.h"

#include "../select.cu"
// MFEMU_SELECT_ONLY: just the cooperating kernels, a faster build for CudaEmulatorMutationTest's mutants
#ifndef MFEMU_SELECT_ONLY
#include "../convert.cu"
#include "../elementwise.cu"
#include "../reduce.cu"
#include "../dare.cu"
#include "../ties.cu"
#include "../aim.cu"
#include "../calib.cu"
#include "../chunk.cu"
#include "../karcher.cu"
#endif

#include "emu_runtime.h"

namespace {
struct Entry {
    std::function<void(void**)> call;
    bool cooperates;  // uses shared memory, barriers, atomics or warp ops: threads run as fibers
};

template <typename... A, size_t... I>
void invoke(void (*k)(A...), void** p, std::index_sequence<I...>) {
    k(*static_cast<std::decay_t<A>*>(p[I])...);
}

template <typename... A>
Entry entry(void (*k)(A...), bool cooperates) {
    return {[k](void** p) { invoke(k, p, std::index_sequence_for<A...>{}); }, cooperates};
}

Entry* find(const std::string& name) {
    static std::vector<std::pair<std::string, Entry>> table = {
        {"mf_radix_hist", entry(mf_radix_hist, true)}, {"mf_eq_count", entry(mf_eq_count, true)},
        {"mf_keep_rank_mask", entry(mf_keep_rank_mask, true)},
#ifndef MFEMU_SELECT_ONLY
        {"mf_load_bf16", entry(mf_load_bf16, false)}, {"mf_load_f16", entry(mf_load_f16, false)},
        {"mf_store_bf16", entry(mf_store_bf16, false)}, {"mf_store_f16", entry(mf_store_f16, false)},
        {"mf_sub", entry(mf_sub, false)}, {"mf_add", entry(mf_add, false)}, {"mf_scale", entry(mf_scale, false)},
        {"mf_div_scalar", entry(mf_div_scalar, false)}, {"mf_axpy", entry(mf_axpy, false)}, {"mf_lerp", entry(mf_lerp, false)},
        {"mf_weighted_sum", entry(mf_weighted_sum, false)}, {"mf_delta_variance", entry(mf_delta_variance, false)}, {"mf_sphere", entry(mf_sphere, false)},
        {"mf_block_sum_abs", entry(mf_block_sum_abs, true)}, {"mf_block_sum_squares", entry(mf_block_sum_squares, true)},
        {"mf_block_dot", entry(mf_block_dot, true)},
        {"mf_philox_drop", entry(mf_philox_drop, false)},
        {"mf_elect_sign", entry(mf_elect_sign, false)}, {"mf_disjoint_merge", entry(mf_disjoint_merge, false)},
        {"mf_relax", entry(mf_relax, false)},
        {"mf_rmsnorm", entry(mf_rmsnorm, true)}, {"mf_rope", entry(mf_rope, false)},
        {"mf_attention", entry(mf_attention, true)}, {"mf_silu_mul", entry(mf_silu_mul, false)},
        {"mf_bias_add", entry(mf_bias_add, false)}, {"mf_abs_sum_cols", entry(mf_abs_sum_cols, false)},
        {"mf_chunk_load", entry(mf_chunk_load, false)}, {"mf_chunk_mul", entry(mf_chunk_mul, false)},
        {"mf_chunk_div", entry(mf_chunk_div, false)}, {"mf_chunk_abs", entry(mf_chunk_abs, false)},
        {"mf_chunk_clamp", entry(mf_chunk_clamp, false)}, {"mf_chunk_fill", entry(mf_chunk_fill, false)},
        {"mf_chunk_affine", entry(mf_chunk_affine, false)}, {"mf_chunk_keep_nonzero", entry(mf_chunk_keep_nonzero, false)},
        {"mf_chunk_disjoint_divisor", entry(mf_chunk_disjoint_divisor, false)},
        {"mf_chunk_block_sums", entry(mf_chunk_block_sums, true)}, {"mf_chunk_abs_hist", entry(mf_chunk_abs_hist, true)},
        {"mf_chunk_lane_dots", entry(mf_chunk_lane_dots, false)}, {"mf_chunk_lane_scale", entry(mf_chunk_lane_scale, false)},
        {"mf_chunk_philox_drop", entry(mf_chunk_philox_drop, false)}, {"mf_chunk_drop_prob", entry(mf_chunk_drop_prob, false)},
        {"mf_chunk_nonzero_bits", entry(mf_chunk_nonzero_bits, false)}, {"mf_chunk_keep_bits", entry(mf_chunk_keep_bits, false)},
        {"mf_chunk_order_hist", entry(mf_chunk_order_hist, true)},
        {"mf_fusion_importance", entry(mf_fusion_importance, false)}, {"mf_fusion_combine", entry(mf_fusion_combine, false)},
        {"mf_fusion_row_kl", entry(mf_fusion_row_kl, false)},
        {"mf_karcher_mean", entry(mf_karcher_mean, false)}, {"mf_karcher_tangent", entry(mf_karcher_tangent, false)},
        {"mf_karcher_mean_tangent", entry(mf_karcher_mean_tangent, false)},
#endif
#ifdef MFEMU_EXTRA_ENTRIES
        MFEMU_EXTRA_ENTRIES  // emu_selftest.cpp's kernels
#endif
    };
    for (auto& e : table) if (e.first == name) return &e.second;
    return nullptr;
}

}  // namespace


// Every later launch's interleaving derives from this seed and the launch's number.
extern "C" void emu_set_seed(unsigned long long seed) {
    std::lock_guard<std::mutex> g(launchLock);
    baseSeed = seed;
    launchNo = 0;
}

// Runs kernel `name` on grid x block threads; returns 0, or -1 with a message in err.
extern "C" int emu_launch(const char* name, unsigned int grid, unsigned int block, void** params, char* err, int errLen) {
    std::lock_guard<std::mutex> g(launchLock);
    Entry* e = find(name);
    kernelName = name;
    error.clear();
    launchNo++;
    rngState = baseSeed ^ (launchNo * 0xD1B54A32D192ED03ull);
    unsigned int b = 0;
    if (e == nullptr) error = std::string("no kernel named ") + name;
    else if (block == 0 || block > 1024 || grid == 0) error = fmt("bad launch shape: %u blocks of %u threads", grid, block);
    if (error.empty()) {
        gridDim.x = grid;
        blockDim.x = block;
        n = block;
        fiberMode = e->cooperates;
        std::vector<unsigned int> order = shuffled(grid);
        for (unsigned int k = 0; k < grid && error.empty(); k++) {
            b = order[k];
            blockIdx.x = b;
            if (fiberMode) {
                body = [e, params] { e->call(params); };
                try {
                    runBlockAsFibers();
                } catch (KernelError& x) {
                    error = x.msg;
                }
            } else {
                try {
                    for (unsigned int t : shuffled(block)) {
                        threadIdx.x = t;
                        e->call(params);
                    }
                } catch (KernelError& x) {
                    error = fmt("thread %u: %s", threadIdx.x, x.msg.c_str());
                }
            }
        }
        fiberMode = false;
    }
    if (error.empty()) return 0;
    std::snprintf(err, (size_t) errLen, "%s, block %u: %s (emulator seed %llu, launch %llu)", name, b, error.c_str(),
                  baseSeed, launchNo);
    return -1;
}
