/*
 * The calibration GEMM's internals, shared by gemm.c (mo_sgemm_nt), gemm512.c (the AVX-512 tile)
 * and attention.c (mo_attention). Not part of the bound API.
 *
 * A product y = x·wᵀ (+ bias) where every y element is ONE fused multiply-add chain over the inner
 * index in ascending order from +0 (docs/calibration.md, "Numerics and speed"); the kernel variant,
 * the blocking and the thread count never change a bit.
 */
#ifndef MO_GEMM_H
#define MO_GEMM_H

#include "mo_internal.h"

/* Kernel variants of a product: the level in use (mo_simd_level) and the CPU's FMA. */
enum { GEMM_PORTABLE, GEMM_AVX2, GEMM_AVX512 };

#define GEMM_MAX_MR 8       /* tokens per register tile, the largest variant's */
#define GEMM_MAX_NR 32      /* outputs per register tile, the largest variant's */
#define GEMM_NC 64          /* outputs per parallel task and per packed panel buffer (a multiple of every NR) */
#define GEMM_MAX_KC 256     /* inner-index block, the largest variant's */
#define GEMM_MC 96          /* tokens per cache block (a multiple of every MR) */

typedef struct {
    const float *x, *w, *bias;
    float *y;
    int64_t tokens, in, out, ldx, ldw, ldy;
    int wt;                /* w is stored inner-major: element (o, i) at w[i·ldw + o] (else w[o·ldw + i]) */
    int isa;               /* GEMM_* */
    int64_t mr, nr, kc;    /* the variant's register tile and inner block */
    float *xp;             /* x packed (gemm_pack_x): per k-block, per group of mr tokens, [kc][mr], short groups padded with 0 */
    int64_t groups;        /* token groups of mr */
} gemm_t;

/* The variant in use now: the SIMD level mo_set_simd_level allows, with FMA present. */
int gemm_isa(void);

/* Sets g->isa and its tile sizes, and g->groups from g->tokens. */
void gemm_setup(gemm_t *g, int isa);

/* Floats gemm_pack_x writes for this product (0 on the portable path), rounded up to 16. */
int64_t gemm_xfloats(const gemm_t *g);

/* Packs x into g->xp (no-op on the portable path). */
void gemm_pack_x(const gemm_t *g);

/* Outputs [o0, o1) (at most GEMM_NC) of every token, on the calling thread; pack is GEMM_MAX_KC·GEMM_NC
   floats, 64-byte aligned, of this thread's own. */
void gemm_outputs(const gemm_t *g, float *pack, int64_t o0, int64_t o1);

/* The AVX-512 register tile (gemm512.c): as gemm.c's tile, mr ≤ 8 tokens by 32 outputs. */
void gemm_tile512(int64_t m, int64_t kc, const float *a, const float *p, float *c, int64_t ldc, int first, const float *bias);

/* The calling thread's scratch of at least `floats` floats, 64-byte aligned, kept between calls
   (grows to the largest need, freed when the thread exits); NULL when out of memory. */
float *gemm_thread_scratch(int64_t floats);

#endif
