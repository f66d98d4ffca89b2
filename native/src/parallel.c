/* Per-call worker threads over fixed chunk boundaries, and the SIMD dispatch switch. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "mo_internal.h"

#define MO_MAX_THREADS 256

typedef struct {
    int64_t n, chunk, tasks;
    atomic_llong next;
    mo_body body;
    void *ctx;
} job_t;

typedef struct {
    job_t *job;
    int worker;
} worker_t;

/* Workers take the next unclaimed task until none is left; which worker runs a task never
   changes what the task computes. */
static void drain(job_t *job, int worker) {
    for (;;) {
        long long t = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (t >= job->tasks) return;
        int64_t lo = (int64_t)t * job->chunk;
        int64_t hi = lo + job->chunk < job->n ? lo + job->chunk : job->n;
        job->body(job->ctx, worker, lo, hi);
    }
}

static void *run_worker(void *arg) {
    worker_t *w = arg;
    drain(w->job, w->worker);
    return NULL;
}

int mo_workers(int64_t n, int64_t chunk, int32_t threads) {
    if (n <= 0) return 1;
    int64_t tasks = (n + chunk - 1) / chunk;
    long t = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (t < 1) t = 1;
    if (t > MO_MAX_THREADS) t = MO_MAX_THREADS;
    if (t > tasks) t = (long)tasks;
    return (int)t;
}

void mo_parallel_for(int64_t n, int64_t chunk, int32_t threads, mo_body body, void *ctx) {
    if (n <= 0) return;
    job_t job = { .n = n, .chunk = chunk, .tasks = (n + chunk - 1) / chunk, .body = body, .ctx = ctx };
    atomic_init(&job.next, 0);
    int workers = mo_workers(n, chunk, threads);
    pthread_t tid[MO_MAX_THREADS];
    worker_t args[MO_MAX_THREADS];
    int started = 0;
    for (int w = 1; w < workers; w++) {
        args[w] = (worker_t){ .job = &job, .worker = w };
        if (pthread_create(&tid[w], NULL, run_worker, &args[w]) != 0) break;  // fewer threads still finish the job
        started = w;
    }
    drain(&job, 0);
    for (int w = 1; w <= started; w++) pthread_join(tid[w], NULL);
}

/* ---------------------------------------------------------------- dispatch */

static int simd_detected = -1;
static int simd_level = -1;

static int detect(void) {
    if (simd_detected < 0) {
        __builtin_cpu_init();
        simd_detected = __builtin_cpu_supports("avx2") ? MO_SIMD_AVX2 : MO_SIMD_PORTABLE;
    }
    return simd_detected;
}

int32_t mo_abi_version(void) { return MO_ABI_VERSION; }

int32_t mo_simd_detected(void) { return detect(); }

int32_t mo_simd_level(void) {
    if (simd_level < 0) simd_level = detect();
    return simd_level;
}

int32_t mo_set_simd_level(int32_t level) {
    int d = detect();
    simd_level = level < MO_SIMD_PORTABLE ? MO_SIMD_PORTABLE : (level > d ? d : level);
    return simd_level;
}

int mo_use_avx2(void) { return mo_simd_level() == MO_SIMD_AVX2; }
