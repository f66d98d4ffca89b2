/*
 * DELLA's drop, one thread, per element: mo_della_drop (one op) against the three ops it fuses
 * (mo_lane_ranks, the affine step p = slope * r + top, mo_drop_by_probability) on task-vector rows read
 * from a file (scripts/della-drop-bench.sh writes them from a model family). Prints the best of 5
 * repetitions of each, their ratio, and whether the two outputs are the same bytes.
 * File: int64 rows, int64 cols, then rows * cols float32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include "mergeops.h"

static double cpu_now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s ROWS_FILE [repetitions]\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    int64_t rows, cols;
    if (!f || fread(&rows, 8, 1, f) != 1 || fread(&cols, 8, 1, f) != 1) { fprintf(stderr, "cannot read %s\n", argv[1]); return 2; }
    int64_t n = rows * cols;
    float *tau = malloc(n * 4), *a = malloc(n * 4), *b = malloc(n * 4), *p = malloc(n * 4);
    if (fread(tau, 4, n, f) != (size_t)n) { fprintf(stderr, "%s is short\n", argv[1]); return 2; }
    fclose(f);
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    // DELLA's density 0.5, epsilon 0.15 (docs/methods.md, "della_magprune")
    float slope = (float)(-0.3 / (double)(cols - 1)), top = 0.65f;
    int64_t key = 0x123456789abcdefLL;
    double fused = 1e9, three = 1e9, copy = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = cpu_now();
        for (int q = 0; q < reps; q++) { memcpy(a, tau, n * 4); mo_della_drop(a, rows, cols, slope, top, 0, key, 1); }
        double t1 = cpu_now();
        for (int q = 0; q < reps; q++) {
            memcpy(b, tau, n * 4);
            mo_lane_ranks(b, rows, cols, 1, p, 1);
            for (int64_t i = 0; i < n; i++) { float v = slope * p[i]; p[i] = v + top; }
            mo_drop_by_probability(b, p, n, 0, key, 1);
        }
        double t2 = cpu_now();
        for (int q = 0; q < reps; q++) memcpy(p, tau, n * 4);
        double t3 = cpu_now();
        if (t1 - t0 < fused) fused = t1 - t0;
        if (t2 - t1 < three) three = t2 - t1;
        if (t3 - t2 < copy) copy = t3 - t2;
    }
    double per = 1e9 / ((double)reps * (double)n);
    printf("%s: %lld rows of %lld: one op %.2f ns/element, three ops %.2f ns/element (ratio %.2f), outputs %s\n", argv[1],
           (long long)rows, (long long)cols, (fused - copy) * per, (three - copy) * per, (fused - copy) / (three - copy),
           memcmp(a, b, n * 4) == 0 ? "identical" : "DIFFER");
    return memcmp(a, b, n * 4) == 0 ? 0 : 1;
}
