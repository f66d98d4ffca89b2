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
#include <immintrin.h>
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

/* A lane's ranks are the positions of its elements in ascending order of key = 0x7fffffff - |x| bits
   (ascending keys are descending magnitudes), equal keys in ascending k. Two ways to that one order:
   - distinct keys (rows of few magnitudes, such as differences of bf16 weights): hash each key to an
     id in first-seen order and count it, sort only the distinct keys, turn the counts into the first
     rank of each key, and hand out ranks in k order (so equal keys get ascending ranks in k order);
   - a stable least-significant-digit radix sort of (key << 32 | k) over the bits where the lane's keys
     differ, in passes of even digits no wider than RADIX_MAX_BITS, all digit histograms counted in one
     sweep, a pass skipped when every key has the same digit; the last pass writes the ranks.
   The distinct way is tried first when the lane has at least DISTINCT_MIN elements; it gives up for
   the radix sort when more than 3/4 of its first DISTINCT_SAMPLE keys are distinct (float32 rows;
   bf16 task-vector rows show ~56%), or when the distinct keys pass a quarter of the lane (about where
   the two ways cost the same). Below DISTINCT_MIN (rows of 768) the radix sort is as fast. Which way
   runs changes the time, never the ranks (NativeLaneRanksTest takes each way). */
#define RADIX_MAX_BITS 11
#define RADIX_MAX_PASSES 8
#define DISTINCT_MIN 1024
#define DISTINCT_SAMPLE 128
#define EMPTY_KEY 0xffffffffu   /* never a key: keys are below 2^31 */

typedef struct {
    uint32_t *key;        /* [len] radix way: the lane's keys in k order */
    uint32_t *id;         /* [len] distinct way: each element's key id (the memory of key) */
    uint32_t *dkey;       /* [len / 4 + 1] distinct way: the key of each id */
    uint32_t *count;      /* [len / 4 + 1] distinct way: elements of each id, then its next rank */
    uint32_t *order;      /* [len / 4 + 1] distinct way: the ids in ascending key order */
    uint64_t *tab;        /* [len / 2 <= slots < len] distinct way: open-addressing table key -> id, at most
                             half full, in the memory of ent (not needed once every key has its id) */
    uint64_t *ent;        /* [2 * len] radix sort entries, two halves */
    uint32_t *hist;       /* [RADIX_MAX_PASSES << RADIX_MAX_BITS] digit histograms */
    int slot_bits;
} rank_scratch;

static int rank_scratch_init(rank_scratch *s, int64_t len) {
    int b = 4;
    while (((int64_t)1 << b) < len / 2) b++;
    s->slot_bits = b;
    size_t quarter = (size_t)(len / 4 + 1), slots = (size_t)1 << b;
    s->key = malloc((size_t)len * sizeof(uint32_t));
    s->id = s->key;
    s->dkey = malloc(quarter * sizeof(uint32_t));
    s->count = malloc(quarter * sizeof(uint32_t));
    s->order = malloc(quarter * sizeof(uint32_t));
    s->ent = malloc((slots > (size_t)len ? slots : (size_t)len) * 2 * sizeof(uint64_t));
    s->tab = s->ent;
    s->hist = malloc(((size_t)RADIX_MAX_PASSES << RADIX_MAX_BITS) * sizeof(uint32_t));
    return s->key && s->dkey && s->count && s->order && s->ent && s->hist;
}

static void rank_scratch_free(rank_scratch *s) {
    free(s->key); free(s->dkey); free(s->count); free(s->order); free(s->ent); free(s->hist);
}

/* Sorts the n keys key[0..n) stably; their varying bits are (any ^ all). The element of sorted
   position r (its index i into key) goes to o[i * st] = r when o is not NULL, else to order[r] = i. */
static void radix_rank(rank_scratch *s, const uint32_t *key, int64_t n, uint32_t any, uint32_t all,
                       float *o, int64_t st, uint32_t *order) {
    uint32_t vary = any ^ all;
    int lo = vary ? __builtin_ctz(vary) : 0, span = vary ? 32 - __builtin_clz(vary) - lo : 0;
    // passes x digit width: the fewest passes of at most RADIX_MAX_BITS bits, or more narrower
    // passes where a short lane would spend more on clearing and summing 2^width counters
    int passes = 0, width = 0;
    double best = 0;
    for (int w = 4; w <= RADIX_MAX_BITS && span > 0; w++) {
        int p = (span + w - 1) / w;
        double cost = p * (4.0 * (double)n + (double)(1 << w));
        if (p <= RADIX_MAX_PASSES && (passes == 0 || cost < best)) { best = cost; passes = p; width = w; }
    }
    if (passes > 0) width = (span + passes - 1) / passes;   // even digits
    uint32_t mask = (1u << width) - 1, *h = s->hist;
    // every pass's histogram in one sweep: LSD counts do not depend on the order
    memset(h, 0, ((size_t)passes << width) * sizeof(uint32_t));
    uint32_t *h0 = h, *h1 = h + ((size_t)1 << width), *h2 = h + ((size_t)2 << width);
    int s0 = lo, s1 = lo + width, s2 = lo + 2 * width;
    switch (passes) {   // the common pass counts unrolled
    case 0: break;
    case 1: for (int64_t i = 0; i < n; i++) h0[(key[i] >> s0) & mask]++; break;
    case 2: for (int64_t i = 0; i < n; i++) { uint32_t k = key[i]; h0[(k >> s0) & mask]++; h1[(k >> s1) & mask]++; } break;
    case 3: for (int64_t i = 0; i < n; i++) { uint32_t k = key[i]; h0[(k >> s0) & mask]++; h1[(k >> s1) & mask]++; h2[(k >> s2) & mask]++; } break;
    default:
        for (int64_t i = 0; i < n; i++)
            for (int p = 0; p < passes; p++) h[((size_t)p << width) + ((key[i] >> (lo + p * width)) & mask)]++;
    }
    int last = -1;
    for (int p = 0; p < passes; p++)
        if (h[((size_t)p << width) + ((key[0] >> (lo + p * width)) & mask)] != (uint32_t)n) last = p;
    uint64_t *cur = s->ent, *nxt = s->ent + n;
    int first = 1;
    for (int p = 0; p <= last; p++) {
        uint32_t *c = h + ((size_t)p << width);
        int shift = lo + p * width;
        if (c[(key[0] >> shift) & mask] == (uint32_t)n) continue;   // one digit for every key: keeps the order
        uint32_t sum = 0;
        for (uint32_t b = 0; b <= mask; b++) { uint32_t t = c[b]; c[b] = sum; sum += t; }
        if (first && p == last) {
            if (o) for (int64_t i = 0; i < n; i++) o[i * st] = (float)(int32_t)c[(key[i] >> shift) & mask]++;
            else for (int64_t i = 0; i < n; i++) order[c[(key[i] >> shift) & mask]++] = (uint32_t)i;
        } else if (first) {
            for (int64_t i = 0; i < n; i++) nxt[c[(key[i] >> shift) & mask]++] = (uint64_t)key[i] << 32 | (uint64_t)i;
        } else if (p == last) {
            if (o) for (int64_t i = 0; i < n; i++) { uint64_t e = cur[i]; o[(int64_t)(uint32_t)e * st] = (float)(int32_t)c[(e >> (32 + shift)) & mask]++; }
            else for (int64_t i = 0; i < n; i++) { uint64_t e = cur[i]; order[c[(e >> (32 + shift)) & mask]++] = (uint32_t)e; }
        } else {
            for (int64_t i = 0; i < n; i++) { uint64_t e = cur[i]; nxt[c[(e >> (32 + shift)) & mask]++] = e; }
        }
        first = 0;
        uint64_t *t = cur; cur = nxt; nxt = t;
    }
    if (first) {   // every key the same: index order
        if (o) for (int64_t i = 0; i < n; i++) o[i * st] = (float)(int32_t)i;
        else for (int64_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    }
}

/* The key of element x: ascending keys are descending magnitudes. */
static inline uint32_t rank_key(float x) { return 0x7fffffffu - (mo_bits(x) & 0x7fffffffu); }

/* The distinct way (see above) for the lane x[k * st]; 0 when it gives up (o untouched). */
static int distinct_rank(rank_scratch *s, const float *x, int64_t n, int64_t st, float *o) {
    int64_t cap = n / 4;
    uint64_t slots = (uint64_t)1 << s->slot_bits, *tab = s->tab;
    uint32_t *id = s->id, *cnt = s->count;
    int down = 32 - s->slot_bits;
    // a slot: key in the low half (EMPTY_KEY when free), its id in the high half
    memset(tab, 0xff, slots * sizeof(uint64_t));
    uint32_t d = 0;
    for (int64_t k = 0; k < n; k++) {
        uint32_t key = rank_key(x[k * st]);
        uint64_t slot = (key * 0x9e3779b1u) >> down, t;
        while ((uint32_t)(t = tab[slot]) != key && (uint32_t)t != EMPTY_KEY) slot = (slot + 1) & (slots - 1);
        if ((uint32_t)t == EMPTY_KEY) {
            if (d == cap) return 0;   // more than a quarter distinct: the radix sort is cheaper
            t = (uint64_t)d << 32 | key;
            tab[slot] = t; s->dkey[d] = key; cnt[d] = 0; d++;
        }
        uint32_t i = (uint32_t)(t >> 32);
        id[k] = i; cnt[i]++;
        if (k == DISTINCT_SAMPLE - 1 && 4 * d > 3 * DISTINCT_SAMPLE) return 0;   // the sample is mostly distinct
    }
    // the distinct keys in ascending order, then each id's first rank
    uint32_t any = 0, all = 0xffffffffu;
    for (uint32_t i = 0; i < d; i++) { any |= s->dkey[i]; all &= s->dkey[i]; }
    radix_rank(s, s->dkey, d, any, all, NULL, 0, s->order);
    uint32_t sum = 0;
    for (uint32_t r = 0; r < d; r++) { uint32_t i = s->order[r], c = cnt[i]; cnt[i] = sum; sum += c; }
    // equal keys take their ranks in k order (ranks < 2^24: exact in int32 and float)
    for (int64_t k = 0; k < n; k++) o[k * st] = (float)(int32_t)cnt[id[k]]++;
    return 1;
}

static void ranks_task(void *c, int w, int64_t v0, int64_t v1) {
    lanes_t *l = c; (void)w;
    int64_t len = l->length, st = l->inner;
    rank_scratch s;
    if (!rank_scratch_init(&s, len)) { rank_scratch_free(&s); atomic_store(&l->failed, 1); return; }
    for (int64_t v = v0; v < v1; v++) {
        const float *x = l->a + lane_start(l, v);
        float *o = l->out + lane_start(l, v);
        if (len >= DISTINCT_MIN && distinct_rank(&s, x, len, st, o)) continue;
        uint32_t any = 0, all = 0xffffffffu;
        for (int64_t k = 0; k < len; k++) {
            uint32_t key = rank_key(x[k * st]);
            s.key[k] = key;
            any |= key;
            all &= key;
        }
        radix_rank(&s, s.key, len, any, all, o, st, NULL);
    }
    rank_scratch_free(&s);
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

/* ---------------------------------------------------------------- DELLA's drop */

/* mo_della_drop: per row, element k of rank r (the ranks above) is kept iff its Philox draw u (top 24
   bits of the draw of tensor index offset + row start + k) is below T(r) = threshold24(p), p =
   fl(fl(slope * r) + top) — the bits of mo_lane_ranks, the affine step and mo_drop_by_probability.
   T is monotone in r (every rounding is), so the row's keys are first counted into NB buckets that
   are monotone in the key: a bucket holds a range of ranks [s, e], and an element whose draw lies
   below both T(s) and T(e) is kept, one at or above both dropped, without its rank; a +0.0 (task
   vectors hold many: x - x is +0.0) is the same kept or dropped. Only those between — about
   2ε · Σ (bucket size)² / row length a row: ~6 in the 0.3B family's rows of 1280, ~34 in the 70B
   slice's rows of 8192 — need their exact rank: counted for each with one (vectorised) sweep over the
   row's keys, or, past DELLA_SCAN_MAX of them in a row, every rank by the radix sort above. Rows much
   longer than 8192 have more of them (bigger groups of equal magnitudes) and took longer this way than
   the three ops, which is why the Java side gives this op rows of up to 8192 only (BENCHMARKS.md,
   "DELLA's drop in one op"). Buckets: ±0 (the largest key) alone in the last one; the other keys k map
   to (k - kmin) >> shift, the smallest shift that fits the row's nonzero keys into NB - 1 buckets. */
#define DELLA_MAX_LEN ((int64_t)1 << 20)
#define DELLA_SCAN_MAX 128
#define ZERO_KEY 0x7fffffffu

typedef struct {
    float *x;
    int64_t rows, len, offset;
    float slope, top;
    uint32_t k0, k1;
    int nb_bits;
    char *scratch;
    int64_t per_worker;
} della_t;

typedef struct {
    uint32_t *key;      /* [len] the row's keys */
    uint64_t *unc;      /* [len] undecided elements, k << 32 | u, in k order */
    uint32_t *draw;     /* [len + 64] every element's u, from the row's first 32-element block */
    float *rank;        /* [len] every rank of the row, when the radix sort runs */
    uint32_t *start;    /* [nb + 1] the first rank of each bucket, then the end */
    uint32_t *used;     /* [nb] the nonempty buckets */
    int32_t *lo, *hi;   /* [nb] the smaller and the larger of T at the bucket's first and last rank */
    rank_scratch rs;    /* ent [2 * len] and hist for the radix sort */
} della_scratch;

static int64_t della_scratch_bytes(int64_t len, int nb_bits) {
    int64_t nb = (int64_t)1 << nb_bits;
    return len * (16 + 8 + 4 + 4 + 4) + 64 * 4 + (nb + 1) * 4 + nb * 12 + ((int64_t)RADIX_MAX_PASSES << RADIX_MAX_BITS) * 4 + 64;
}

static void della_scratch_at(della_scratch *s, char *p, int64_t len, int nb_bits) {
    int64_t nb = (int64_t)1 << nb_bits;
    s->rs.ent = (uint64_t *)p; p += len * 16;
    s->unc = (uint64_t *)p; p += len * 8;
    s->key = (uint32_t *)p; p += len * 4;
    s->rank = (float *)p; p += len * 4;
    s->draw = (uint32_t *)p; p += len * 4 + 64 * 4;
    s->used = (uint32_t *)p; p += nb * 4;
    s->lo = (int32_t *)p; p += nb * 4;
    s->hi = (int32_t *)p; p += nb * 4;
    s->rs.hist = (uint32_t *)p; p += ((int64_t)RADIX_MAX_PASSES << RADIX_MAX_BITS) * 4;
    s->start = (uint32_t *)p;
}

/* threshold24(fl(fl(slope * r) + top)): ceil(p * 2^24) clamped to [0, 2^24], 0 for NaN; r < 2^24.
   For 0 <= p < 1, p * 2^24 is exact in float and below 2^24: its ceiling is the truncation, plus one
   where that is below (no libm call). */
static inline int32_t della_threshold(float slope, float top, int32_t r) {
    float p = slope * (float)r;
    p = p + top;
    float v = (p >= 0 && p < 1.0f ? p : 0.0f) * 16777216.0f;
    int32_t t = (int32_t)v;
    t += v > (float)t;
    return p >= 1.0f ? 16777216 : t;
}

static inline uint32_t della_bucket(uint32_t key, uint32_t kmin, int shift, uint32_t last) {
    uint32_t zero = 0u - (uint32_t)(key == ZERO_KEY);   // branch-free: a row holds ±0 at random places
    return (((key - kmin) >> shift) & ~zero) | (last & zero);
}

/* The keys of x[k0..k1) into key, the smallest into *kmin and the largest nonzero into *kmax. */
static void della_keys(const float *x, int64_t k0, int64_t k1, uint32_t *key, uint32_t *kmin, uint32_t *kmax) {
    uint32_t lo = *kmin, hi = *kmax;
    for (int64_t k = k0; k < k1; k++) {
        uint32_t kk = rank_key(x[k]), nz = kk == ZERO_KEY ? 0 : kk;
        key[k] = kk;
        lo = kk < lo ? kk : lo;
        hi = nz > hi ? nz : hi;
    }
    *kmin = lo; *kmax = hi;
}

MO_AVX2 static void della_keys_avx2(const float *x, int64_t len, uint32_t *key, uint32_t *kmin, uint32_t *kmax) {
    __m256i mag = _mm256_set1_epi32(0x7fffffff), zk = _mm256_set1_epi32((int)ZERO_KEY);
    __m256i lo = _mm256_set1_epi32(-1), hi = _mm256_setzero_si256();
    int64_t k = 0;
    for (; k + 8 <= len; k += 8) {
        // key = 0x7fffffff - |bits| = ~bits & 0x7fffffff
        __m256i kk = _mm256_andnot_si256(_mm256_castps_si256(_mm256_loadu_ps(x + k)), mag);
        _mm256_storeu_si256((__m256i *)(key + k), kk);
        lo = _mm256_min_epu32(lo, kk);
        hi = _mm256_max_epu32(hi, _mm256_andnot_si256(_mm256_cmpeq_epi32(kk, zk), kk));
    }
    uint32_t l[8], h[8];
    _mm256_storeu_si256((__m256i *)l, lo);
    _mm256_storeu_si256((__m256i *)h, hi);
    for (int j = 0; j < 8; j++) { *kmin = l[j] < *kmin ? l[j] : *kmin; *kmax = h[j] > *kmax ? h[j] : *kmax; }
    della_keys(x, k, len, key, kmin, kmax);
}

/* What the decision step reads: the keys, draws and bucket thresholds, where the undecided go. */
typedef struct {
    const uint32_t *key, *u;
    const int32_t *lo, *hi;
    uint64_t *unc;
    uint32_t kmin, last;
    int shift;
} della_cut;

/* Elements k0..k1 of the row: +0.0 where the draw is at or above every threshold of the bucket,
   unchanged below them all, noted as undecided (after m of them) between; returns the new count. */
static int64_t della_decide(const della_cut *c, float *x, int64_t k0, int64_t k1, int64_t m) {
    for (int64_t k = k0; k < k1; k++) {
        uint32_t uk = c->u[k], b = della_bucket(c->key[k], c->kmin, c->shift, c->last);
        int32_t l = c->lo[b], h = c->hi[b];
        uint32_t bits = mo_bits(x[k]) & (0u - (uint32_t)((int32_t)uk < h));
        x[k] = mo_float(bits);
        if ((int32_t)uk >= l && (int32_t)uk < h && bits != 0) c->unc[m++] = (uint64_t)k << 32 | uk;
    }
    return m;
}

/* della_decide, 8 elements a vector (the thresholds gathered). */
MO_AVX2 static int64_t della_decide_avx2(const della_cut *c, float *x, int64_t len) {
    __m256i kmin = _mm256_set1_epi32((int)c->kmin), last = _mm256_set1_epi32((int)c->last), zk = _mm256_set1_epi32((int)ZERO_KEY);
    __m128i sh = _mm_cvtsi32_si128(c->shift);
    __m256i zero = _mm256_setzero_si256();
    int64_t m = 0, k = 0;
    for (; k + 8 <= len; k += 8) {
        __m256i key = _mm256_loadu_si256((const __m256i *)(c->key + k));
        __m256i b = _mm256_blendv_epi8(_mm256_srl_epi32(_mm256_sub_epi32(key, kmin), sh), last, _mm256_cmpeq_epi32(key, zk));
        __m256i l = _mm256_i32gather_epi32((const int *)c->lo, b, 4), h = _mm256_i32gather_epi32((const int *)c->hi, b, 4);
        __m256i u = _mm256_loadu_si256((const __m256i *)(c->u + k));
        __m256i keep = _mm256_cmpgt_epi32(h, u);   // u < h (both below 2^24 + 1)
        __m256i v = _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(x + k)), keep);
        _mm256_storeu_ps(x + k, _mm256_castsi256_ps(v));
        // undecided: l <= u < h, and not +0.0
        __m256i und = _mm256_andnot_si256(_mm256_or_si256(_mm256_cmpgt_epi32(l, u), _mm256_cmpeq_epi32(v, zero)), keep);
        int mask = _mm256_movemask_ps(_mm256_castsi256_ps(und));
        while (mask) {
            int j = __builtin_ctz(mask);
            mask &= mask - 1;
            c->unc[m++] = (uint64_t)(k + j) << 32 | c->u[k + j];
        }
    }
    return della_decide(c, x, k, len, m);
}

/* One row: x[0..len), its first element at tensor index g0. The same integer decisions on either
   path; on the AVX2 one the keys and decisions are vector loops and the compiler vectorises the
   counting sweeps. */
static inline __attribute__((always_inline)) void della_row_body(const della_t *d, della_scratch *s, float *x, int64_t len, int64_t g0, int avx2) {
    uint32_t nb = 1u << d->nb_bits, last = nb - 1;
    // the keys, the smallest and the largest nonzero one
    uint32_t kmin = ZERO_KEY, kmax = 0;
    if (avx2) della_keys_avx2(x, len, s->key, &kmin, &kmax);
    else della_keys(x, 0, len, s->key, &kmin, &kmax);
    int shift = 0;
    if (kmin != ZERO_KEY) while (((kmax - kmin) >> shift) > last - 1) shift++;
    // counts per bucket, then each bucket's first rank, and the thresholds at the ends of the nonempty ones
    uint32_t *start = s->start;
    memset(start, 0, (size_t)(nb + 1) * sizeof(uint32_t));
    for (int64_t k = 0; k < len; k++) start[della_bucket(s->key[k], kmin, shift, last)]++;
    uint32_t sum = 0, used = 0;
    for (uint32_t b = 0; b < nb; b++) { uint32_t c = start[b]; start[b] = sum; sum += c; s->used[used] = b; used += c != 0; }
    start[nb] = sum;
    for (uint32_t i = 0; i < used; i++) {
        uint32_t b = s->used[i];
        int32_t ts = della_threshold(d->slope, d->top, (int32_t)start[b]), te = della_threshold(d->slope, d->top, (int32_t)start[b + 1] - 1);
        s->lo[b] = ts < te ? ts : te;
        s->hi[b] = ts < te ? te : ts;
    }
    // every draw of the row, 32 at a time from the multiple of 32 at or before its start
    int64_t first = g0 & ~(int64_t)31;
    for (int64_t g = first; g < g0 + len; g += 32) mo_philox_u24_x32(g, d->k0, d->k1, s->draw + (g - first));
    const uint32_t *u = s->draw + (g0 - first);
    // sure keeps stay, sure drops become +0, the rest wait
    della_cut c = { .key = s->key, .u = u, .lo = s->lo, .hi = s->hi, .unc = s->unc, .kmin = kmin, .shift = shift, .last = last };
    int64_t m = avx2 ? della_decide_avx2(&c, x, len) : della_decide(&c, x, 0, len, 0);
    if (m == 0) return;
    if (m > DELLA_SCAN_MAX) {
        // many undecided (a row of few magnitudes): every rank at once
        uint32_t any = 0, all = 0xffffffffu;
        for (int64_t k = 0; k < len; k++) { any |= s->key[k]; all &= s->key[k]; }
        radix_rank(&s->rs, s->key, len, any, all, s->rank, 1, NULL);
    }
    for (int64_t i = 0; i < m; i++) {
        int64_t k = (int64_t)(s->unc[i] >> 32);
        uint32_t uk = (uint32_t)s->unc[i];
        int32_t r;
        if (m > DELLA_SCAN_MAX) {
            r = (int32_t)s->rank[k];
        } else {
            // its rank: the smaller keys, and the equal ones before it (keys < 2^31: signed compares)
            int32_t kk = (int32_t)s->key[k], c = 0;
            for (int64_t j = 0; j < k; j++) c += (int32_t)s->key[j] <= kk;
            for (int64_t j = k + 1; j < len; j++) c += (int32_t)s->key[j] < kk;
            r = c;
        }
        if ((int32_t)uk >= della_threshold(d->slope, d->top, r)) x[k] = 0.0f;
    }
}

MO_AVX2 static void della_row_avx2(const della_t *d, della_scratch *s, float *x, int64_t len, int64_t g0) {
    della_row_body(d, s, x, len, g0, 1);
}

static void della_row_portable(const della_t *d, della_scratch *s, float *x, int64_t len, int64_t g0) {
    della_row_body(d, s, x, len, g0, 0);
}

static void della_task(void *c, int w, int64_t r0, int64_t r1) {
    const della_t *d = c;
    della_scratch s;
    della_scratch_at(&s, d->scratch + (int64_t)w * d->per_worker, d->len, d->nb_bits);
    int avx2 = mo_use_avx2();
    for (int64_t r = r0; r < r1; r++) {
        if (avx2) della_row_avx2(d, &s, d->x + r * d->len, d->len, d->offset + r * d->len);
        else della_row_portable(d, &s, d->x + r * d->len, d->len, d->offset + r * d->len);
    }
}

int32_t mo_della_drop(float *x, int64_t rows, int64_t len, float slope, float top, int64_t offset, int64_t key, int32_t threads) {
    if (rows < 0 || len < 0 || offset < 0 || len > DELLA_MAX_LEN) return MO_ERR_ARG;
    if (rows == 0 || len == 0) return MO_OK;
    if (!x) return MO_ERR_ARG;
    // buckets: about a quarter to a half of the row, 16 to 2^16
    int nb_bits = 4;
    while (nb_bits < 16 && ((int64_t)4 << nb_bits) < len) nb_bits++;
    della_t d = { .x = x, .rows = rows, .len = len, .offset = offset, .slope = slope, .top = top,
                  .k0 = (uint32_t)key, .k1 = (uint32_t)((uint64_t)key >> 32), .nb_bits = nb_bits };
    int64_t per = lanes_per_task(len);
    int workers = mo_workers(rows, per, threads);
    d.per_worker = (della_scratch_bytes(len, nb_bits) + 63) / 64 * 64;
    d.scratch = mo_thread_scratch(MO_SCRATCH_DELLA, workers * d.per_worker);
    if (!d.scratch) return MO_ERR_NOMEM;
    mo_parallel_for(rows, per, threads, della_task, &d);
    return MO_OK;
}
