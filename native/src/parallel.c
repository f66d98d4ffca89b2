/* A persistent worker pool over fixed chunk boundaries, and the SIMD dispatch switch. */
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>
#include "mo_internal.h"

#define MO_MAX_THREADS 256

/* One mo_parallel_for call. Lives on its caller's stack; pool workers join it under the pool lock
   while it is listed, and the caller unlists it and waits until every joined worker has left. */
typedef struct job {
    int64_t n, chunk, tasks;
    atomic_llong next;
    mo_body body;
    void *ctx;
    int wanted;      /* helpers this call may use: workers - 1 */
    int joined;      /* helpers that joined (worker ids 1..joined) */
    int running;     /* joined helpers not yet finished */
    pthread_cond_t done;
    struct job *prev, *nextjob;
} job_t;

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

/* The pool: threads started on demand (never more than a call asked for, at most MO_MAX_THREADS - 1),
   kept for the life of the process, idle on `work` until a listed job has room for a helper.
   Concurrent calls from several Java threads each get their own job; helpers spread over them. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static job_t *jobs;          /* listed jobs, newest first */
static int pool_threads;     /* helpers started so far */

/* A listed job with room for one more helper and a task left to claim, or NULL. Under pool_lock. */
static job_t *job_with_room(void) {
    for (job_t *j = jobs; j; j = j->nextjob)
        if (j->joined < j->wanted && atomic_load_explicit(&j->next, memory_order_relaxed) < j->tasks) return j;
    return NULL;
}

static void *pool_worker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        job_t *j = job_with_room();
        if (!j) { pthread_cond_wait(&work, &pool_lock); continue; }
        int id = ++j->joined;
        j->running++;
        pthread_mutex_unlock(&pool_lock);
        drain(j, id);
        pthread_mutex_lock(&pool_lock);
        if (--j->running == 0) pthread_cond_signal(&j->done);
    }
    return NULL;
}

/* Starts helpers until `want` exist (fewer if the system refuses: the call's own thread still
   finishes the job). Under pool_lock. */
static void grow_pool(int want) {
    while (pool_threads < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, pool_worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) return;
        pool_threads++;
    }
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
    job.wanted = mo_workers(n, chunk, threads) - 1;
    if (job.wanted > 0) {
        pthread_cond_init(&job.done, NULL);
        pthread_mutex_lock(&pool_lock);
        grow_pool(job.wanted);
        job.nextjob = jobs;
        if (jobs) jobs->prev = &job;
        jobs = &job;
        pthread_cond_broadcast(&work);
        pthread_mutex_unlock(&pool_lock);
    }
    drain(&job, 0);
    if (job.wanted > 0) {
        pthread_mutex_lock(&pool_lock);
        // unlist: no helper joins any more; then wait for those that did
        if (job.prev) job.prev->nextjob = job.nextjob; else jobs = job.nextjob;
        if (job.nextjob) job.nextjob->prev = job.prev;
        while (job.running > 0) pthread_cond_wait(&job.done, &pool_lock);
        pthread_mutex_unlock(&pool_lock);
        pthread_cond_destroy(&job.done);
    }
}

/* ---------------------------------------------------------------- dispatch */

/* Detected once (pthread_once), before any kernel reads it; the level in use is atomic because
   worker threads read it while mo_set_simd_level (tests only) may write it. */
static pthread_once_t simd_once = PTHREAD_ONCE_INIT;
static int simd_detected;
static atomic_int simd_level;

static void detect_once(void) {
    __builtin_cpu_init();
    simd_detected = !__builtin_cpu_supports("avx2") ? MO_SIMD_PORTABLE
                  : __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") ? MO_SIMD_AVX512 : MO_SIMD_AVX2;
    atomic_store(&simd_level, simd_detected);
}

static int detect(void) {
    pthread_once(&simd_once, detect_once);
    return simd_detected;
}

int32_t mo_abi_version(void) { return MO_ABI_VERSION; }

int32_t mo_simd_detected(void) { return detect(); }

int32_t mo_simd_level(void) {
    detect();
    return atomic_load_explicit(&simd_level, memory_order_relaxed);
}

int32_t mo_set_simd_level(int32_t level) {
    int d = detect();
    int l = level < MO_SIMD_PORTABLE ? MO_SIMD_PORTABLE : (level > d ? d : level);
    atomic_store(&simd_level, l);
    return l;
}

/* The merge kernels have no AVX-512 variant: the AVX-512 level runs their AVX2 one. */
int mo_use_avx2(void) { return mo_simd_level() >= MO_SIMD_AVX2; }

/* ---------------------------------------------------------------- per-thread scratch */

typedef struct { void *p[MO_SCRATCH_SLOTS]; int64_t n[MO_SCRATCH_SLOTS]; } scratch_t;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *v) {
    scratch_t *s = v;
    for (int i = 0; i < MO_SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}

static void scratch_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

void *mo_thread_scratch(int slot, int64_t bytes) {
    if (slot < 0 || slot >= MO_SCRATCH_SLOTS || bytes < 0) return NULL;
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok) return NULL;
    scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof(scratch_t));
        if (!s || pthread_setspecific(scratch_key, s) != 0) { free(s); return NULL; }
    }
    if (s->n[slot] < bytes || !s->p[slot]) {
        free(s->p[slot]);
        // aligned_alloc wants a size that is a multiple of the alignment (and not 0)
        s->p[slot] = aligned_alloc(64, (size_t)(((bytes > 0 ? bytes : 1) + 63) / 64 * 64));
        s->n[slot] = s->p[slot] ? bytes : 0;
    }
    return s->p[slot];
}
