// The emulator's speed on its most expensive kernel: one mf_attention launch (calib.cu) over
// sequences of 128 tokens, 4 heads of 32 (2 KV heads), as the zoo model's forward pass runs it,
// on a library built from mf_emulator.cpp; prints the wall and CPU seconds and a checksum of the
// output (equal for every emulator seed and build: the kernel is deterministic).
// Build: g++ -std=c++17 -O1 -shared -fPIC -ffp-contract=off -o libmfemu.so mf_emulator.cpp
//        g++ -O1 -o emu_bench emu_bench.cpp -ldl
// Run:   emu_bench ./libmfemu.so [rows, default 512]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <dlfcn.h>
#include <vector>

typedef int (*launch_t)(const char*, unsigned, unsigned, void**, char*, int);
typedef void (*seed_t)(unsigned long long);
int main(int argc, char** argv) {
    if (argc < 2) { printf("usage: emu_bench LIBMFEMU.so [rows]\n"); return 2; }
    void* h = dlopen(argv[1], RTLD_NOW);
    if (!h) { printf("%s\n", dlerror()); return 1; }
    launch_t launch = (launch_t) dlsym(h, "emu_launch");
    ((seed_t) dlsym(h, "emu_set_seed"))(1);
    long long rows = argc > 2 ? atoll(argv[2]) : 512;
    int heads = 4, kvh = 2, d = 32, window = 0; float scale = 0.17f;
    std::vector<float> q(rows * heads * d), k(rows * kvh * d), v(rows * kvh * d), out(rows * heads * d);
    std::vector<int> pos(rows);
    for (long long r = 0; r < rows; r++) pos[r] = (int) (r % 128);  // sequences of 128 tokens, one after another
    for (auto& x : q) x = (float) rand() / RAND_MAX;
    for (auto& x : k) x = (float) rand() / RAND_MAX;
    for (auto& x : v) x = (float) rand() / RAND_MAX;
    float *pq = q.data(), *pk = k.data(), *pv = v.data(), *po = out.data(); int* pp = pos.data();
    void* params[] = {&pq, &pk, &pv, &pp, &heads, &kvh, &d, &window, &scale, &po, &rows};
    char err[1024];
    std::clock_t c0 = std::clock();
    auto t0 = std::chrono::steady_clock::now();
    int rc = launch("mf_attention", 64, 256, params, err, 1024);  // 64 blocks of MF_ATT_THREADS, grid-stride over the (tile, head) pairs
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu = (double) (std::clock() - c0) / CLOCKS_PER_SEC;
    double sum = 0; for (float x : out) sum += x;
    if (rc != 0) { printf("launch failed: %s\n", err); return 1; }
    printf("mf_attention over %lld rows: %.3f s wall, %.3f s CPU, checksum %.9g\n", rows, s, cpu, sum);
    return rc;
}
