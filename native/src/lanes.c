/*
 * Ops over lanes (dev.mergeforge.backend.Lanes): a tensor seen as [outer, length, inner], lane
 * v = o*inner + j holding the elements at (o*length + k)*inner + j for k < length. The same bits as
 * the Java reference (dev.mergeforge.backend.PortableOps, LaneRanks): a lane's dot product is summed
 * in the canonical order along the lane (blocks of MO_BLOCK, each as 64 stripes of k % 64 combined by
 * mo_tree64, the block sums added from 0.0); a lane's
 * ranks are the unique order of (descending |x| bits, ascending k), whatever sort finds it. Work is
 * split over lanes at fixed boundaries.
 */
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include "mo_internal.h"

typedef struct {
    const float *a, *b;
    const float *s;
    float *out;
    double *dots;
    int64_t outer, length, inner;
    atomic_int failed;
} lanes_t;

/* Flat index of element 0 of lane v; the lane's stride is inner. */
static inline int64_t lane_start(const lanes_t *l, int64_t v) {
    int64_t o = v / l->inner, j = v - o * l->inner;
    return o * l->length * l->inner + j;
}

/* Lanes per task: about MO_CHUNK elements of work each. */
static int64_t lanes_per_task(int64_t length) {
    int64_t per = MO_CHUNK / (length > 1 ? length : 1);
    return per > 1 ? per : 1;
}

/* ---------------------------------------------------------------- dots */

static void dots_task(void *c, int w, int64_t v0, int64_t v1) {
    lanes_t *l = c; (void)w;
    int64_t len = l->length, st = l->inner;
    for (int64_t v = v0; v < v1; v++) {
        const float *a = l->a + lane_start(l, v), *b = l->b + lane_start(l, v);
        double total = 0.0;
        for (int64_t k0 = 0; k0 < len; k0 += MO_BLOCK) {
            int64_t k1 = k0 + MO_BLOCK < len ? k0 + MO_BLOCK : len;
            // the block's stripes (k % 64) from 0.0 in k order, then the tree
            double s[MO_STRIPES] = {0.0};
            for (int64_t k = k0; k < k1; k++) s[k & (MO_STRIPES - 1)] += (double)a[k * st] * (double)b[k * st];
            total += mo_tree64(s);
        }
        l->dots[v] = total;
    }
}

int32_t mo_lane_dots(const float *a, const float *b, int64_t outer, int64_t length, int64_t inner, double *out, int32_t threads) {
    if (outer < 0 || length < 0 || inner < 0) return MO_ERR_ARG;
    int64_t count = outer * inner;
    if (count == 0) return MO_OK;
    if (!out || (length > 0 && (!a || !b))) return MO_ERR_ARG;
    lanes_t l = { .a = a, .b = b, .dots = out, .outer = outer, .length = length, .inner = inner };
    mo_parallel_for(count, lanes_per_task(length), threads, dots_task, &l);
    return MO_OK;
}

/* ---------------------------------------------------------------- scale */

/* out[i] = s[lane(i)] * x[i] over elements [lo, hi): runs of one lane (inner == 1) or of consecutive lanes (inner > 1). */
static void scale_task(void *c, int w, int64_t lo, int64_t hi) {
    lanes_t *l = c; (void)w;
    int64_t len = l->length, in = l->inner;
    int64_t i = lo;
    while (i < hi) {
        if (in == 1) {
            // lane i / len for the rest of its row
            int64_t v = i / len, end = (v + 1) * len < hi ? (v + 1) * len : hi;
            float f = l->s[v];
            for (; i < end; i++) l->out[i] = f * l->a[i];
        } else {
            // i = (o*len + k)*inner + j: lanes o*inner + j for j up to the end of this k's row of inner
            int64_t o = i / (len * in), j = i % in, row = i - j, end = row + in < hi ? row + in : hi;
            const float *f = l->s + o * in;
            for (; i < end; i++) l->out[i] = f[i - row] * l->a[i];
        }
    }
}

int32_t mo_lane_scale(const float *x, const float *s, int64_t outer, int64_t length, int64_t inner, float *out, int32_t threads) {
    if (outer < 0 || length < 0 || inner < 0) return MO_ERR_ARG;
    int64_t n = outer * length * inner;
    if (n == 0) return MO_OK;
    if (!x || !s || !out) return MO_ERR_ARG;
    lanes_t l = { .a = x, .s = s, .out = out, .outer = outer, .length = length, .inner = inner };
    mo_parallel_for(n, MO_CHUNK, threads, scale_task, &l);
    return MO_OK;
}

/* ---------------------------------------------------------------- ranks */

/* Per lane: a stable least-significant-digit radix sort of (key << 32 | k), key = 0x7fffffff - |x| bits
   (ascending keys are descending magnitudes; stability keeps lower k first), four passes of 8 bits, a
   pass skipped when every key has the same digit. Each pass counts and scatters the current order as
   WAYS contiguous parts interleaved, each part with its own counters (part w's entries of a digit go
   after part w-1's: still stable), so runs of one digit - common in the high digits, where magnitudes
   share exponents - do not serialise on one counter. */
#define WAYS 4

static void ranks_task(void *c, int w, int64_t v0, int64_t v1) {
    lanes_t *l = c; (void)w;
    int64_t len = l->length, st = l->inner;
    uint64_t *buf = malloc((size_t)len * 2 * sizeof(uint64_t));
    if (!buf) { atomic_store(&l->failed, 1); return; }
    uint32_t count[WAYS][256];
    int64_t part[WAYS + 1], m = len / WAYS;
    for (int q = 0; q <= WAYS; q++) part[q] = q * len / WAYS;
    for (int64_t v = v0; v < v1; v++) {
        const float *x = l->a + lane_start(l, v);
        float *o = l->out + lane_start(l, v);
        uint64_t *cur = buf, *nxt = buf + len;
        uint32_t any = 0, all = 0xffffffffu;
        for (int64_t k = 0; k < len; k++) {
            uint32_t key = 0x7fffffffu - (mo_bits(x[k * st]) & 0x7fffffffu);
            cur[k] = (uint64_t)key << 32 | (uint64_t)k;
            any |= key;
            all &= key;
        }
        for (int p = 0; p < 4; p++) {
            int shift = 32 + 8 * p;
            if ((((any ^ all) >> (8 * p)) & 255) == 0) continue;   // one digit for every key: the pass keeps the order
            memset(count, 0, sizeof(count));
            for (int64_t i = 0; i < m; i++)
                for (int q = 0; q < WAYS; q++) count[q][(cur[part[q] + i] >> shift) & 255]++;
            for (int q = 0; q < WAYS; q++)
                if (part[q] + m < part[q + 1]) count[q][(cur[part[q] + m] >> shift) & 255]++;
            // where each part's entries of each digit start: digits ascending, parts in order within a digit
            uint32_t sum = 0;
            for (int b = 0; b < 256; b++)
                for (int q = 0; q < WAYS; q++) { uint32_t t = count[q][b]; count[q][b] = sum; sum += t; }
            for (int64_t i = 0; i < m; i++)
                for (int q = 0; q < WAYS; q++) { uint64_t e = cur[part[q] + i]; nxt[count[q][(e >> shift) & 255]++] = e; }
            for (int q = 0; q < WAYS; q++)
                if (part[q] + m < part[q + 1]) { uint64_t e = cur[part[q] + m]; nxt[count[q][(e >> shift) & 255]++] = e; }
            uint64_t *t = cur; cur = nxt; nxt = t;
        }
        // element k of rank r: its position in the sorted order
        for (int64_t r = 0; r < len; r++) o[(int64_t)(uint32_t)cur[r] * st] = (float)r;
    }
    free(buf);
}

int32_t mo_lane_ranks(const float *x, int64_t outer, int64_t length, int64_t inner, float *out, int32_t threads) {
    if (outer < 0 || length < 0 || inner < 0 || length > ((int64_t)1 << 24)) return MO_ERR_ARG;
    int64_t count = outer * inner;
    if (count == 0 || length == 0) return MO_OK;
    if (!x || !out) return MO_ERR_ARG;
    lanes_t l = { .a = x, .out = out, .outer = outer, .length = length, .inner = inner };
    atomic_init(&l.failed, 0);
    mo_parallel_for(count, lanes_per_task(length), threads, ranks_task, &l);
    return atomic_load(&l.failed) ? MO_ERR_NOMEM : MO_OK;
}
