/* Internal helpers shared by the kernel files; not part of the bound API. */
#ifndef MO_INTERNAL_H
#define MO_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include "mergeops.h"

/* Elements per parallel task: the same chunk as dev.mergeforge.backend.Parallel.CHUNK. */
#define MO_CHUNK ((int64_t)1 << 16)
/* Elements per canonical reduction block: dev.mergeforge.backend.Reductions.BLOCK. */
#define MO_BLOCK ((int64_t)4096)
/* Stripes per block: position p of a block belongs to stripe p % MO_STRIPES (Reductions.STRIPES). */
#define MO_STRIPES 64

/* The block sum of the 64 stripe sums s (overwritten): adjacent pairs level by level,
   s[j] = s[2j] + s[2j+1] for 32, 16, 8, 4, 2, 1 sums, left operand first (Reductions.tree). */
static inline double mo_tree64(double *s) {
    for (int w = MO_STRIPES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) s[j] = s[2 * j] + s[2 * j + 1];
    return s[0];
}

#define MO_AVX2 __attribute__((target("avx2")))

/* A task body: handles elements [lo, hi) on worker `worker` (0 <= worker < workers). */
typedef void (*mo_body)(void *ctx, int worker, int64_t lo, int64_t hi);

/* The number of workers mo_parallel_for will use for n elements in chunks of `chunk`. */
int mo_workers(int64_t n, int64_t chunk, int32_t threads);

/* Runs body over [0, n) in tasks of `chunk` elements (task boundaries are multiples of chunk),
   on mo_workers(n, chunk, threads) workers: the calling thread plus helpers from a persistent pool
   (fewer when the pool is busy with other calls; the tasks, and so the results, stay the same). */
void mo_parallel_for(int64_t n, int64_t chunk, int32_t threads, mo_body body, void *ctx);

/* Scratch memory a thread keeps from call to call, one buffer per slot: a chunked pass calls an op
   once per chunk, and megabytes taken fresh each time cost their page faults and zeroing as much as
   the work did. Slots are separate so that a user of one never overwrites another's. */
enum { MO_SCRATCH_GEMM, MO_SCRATCH_HISTOGRAM, MO_SCRATCH_FUSION, MO_SCRATCH_DELLA, MO_SCRATCH_SLOTS };

/* At least `bytes` bytes (64-byte aligned, contents undefined) of the calling thread's buffer of
   `slot`, grown as needed and freed when the thread ends; NULL when memory runs out. */
void *mo_thread_scratch(int slot, int64_t bytes);

/* Nonzero when the AVX2 paths are in use (level AVX2 or AVX-512). */
int mo_use_avx2(void);

/* Converts m elements between a stored dtype (MO_DTYPE_*) and float32, on the AVX2 path when in use;
   src/dst point at the first element of the run (convert.c). */
void mo_load_run(int32_t dtype, const void *src, float *dst, int64_t m, int32_t nan_mode);
void mo_store_run(int32_t dtype, const float *src, void *dst, int64_t m, int32_t nan_mode);

/* The top 24 bits of the Philox draws (dropout.c) of tensor indices g .. g + 31 under key (k0, k1), g a
   multiple of 32: u[j] for index g + j. */
void mo_philox_u24_x32(int64_t g, uint32_t k0, uint32_t k1, uint32_t u[32]);

/* Bytes per element of a MO_DTYPE_*, or 0 for an unknown one. */
int mo_dtype_size(int32_t dtype);

static inline uint32_t mo_bits(float f) { union { float f; uint32_t u; } v = { .f = f }; return v.u; }
static inline float mo_float(uint32_t u) { union { uint32_t u; float f; } v = { .u = u }; return v.f; }

#endif
