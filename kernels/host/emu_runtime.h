// The emulator's runtime: the fiber scheduler, barriers, warp collectives, the shared-memory
// checks and the seeded random choices (what they guarantee: cuda_host_shim.h and docs/cuda.md).
// Included once, by mf_emulator.cpp: the emulator is one translation unit, so that emu_selftest.cpp
// can add its own kernels to the table.
#pragma once
#include "cuda_host_shim.h"


#include <cstdarg>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <sys/mman.h>
#include <utility>
#include <vector>
#if !defined(__x86_64__) || defined(MFEMU_UCONTEXT)
#include <ucontext.h>
#endif

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#define MFEMU_TSAN 1
#endif

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {
struct KernelError { std::string msg; };

enum class St : unsigned char { RUNNABLE, BARRIER, WARP, DONE };

#if defined(__x86_64__) && !defined(MFEMU_UCONTEXT)
// A fiber's saved context is its stack pointer: mfemu_switch pushes the callee-saved registers and
// the SSE/x87 control words on the stack it leaves and pops them from the one it resumes. glibc's
// swapcontext also saves and restores the signal mask, a system call per switch that made up a
// third of the emulator's time; the fibers never change the mask, so it is not needed.
struct Ctx { void* sp = nullptr; };
extern "C" void mfemu_switch(void** save, void* resume) __attribute__((visibility("hidden")));
asm(R"(
    .text
    .p2align 4
    .globl mfemu_switch
    .hidden mfemu_switch
    .type mfemu_switch, @function
mfemu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size mfemu_switch, .-mfemu_switch
)");

// What ctxSwitch resumes, read before the switch (under ThreadSanitizer, before the switch of TSan
// fibers: a read after it would count as the next fiber's, unordered with the write that made it).
typedef void* CtxTarget;
CtxTarget target(const Ctx& c) { return c.sp; }
void ctxSwitch(Ctx& save, CtxTarget resume) { mfemu_switch(&save.sp, resume); }

// A context that starts entry() on the stack [stack, stack + size), as if called (a zero return
// address above it ends backtraces), with the caller's floating-point control words.
void ctxMake(Ctx& c, char* stack, size_t size, void (*entry)()) {
    unsigned long long* top = reinterpret_cast<unsigned long long*>((reinterpret_cast<uintptr_t>(stack) + size) & ~(uintptr_t) 15);
    unsigned int csr;
    unsigned short cw;
    asm volatile("stmxcsr %0" : "=m"(csr));
    asm volatile("fnstcw %0" : "=m"(cw));
    unsigned long long* sp = top - 9;
    sp[0] = csr | (unsigned long long) cw << 32;          // mxcsr, x87 control word
    for (int r = 1; r <= 6; r++) sp[r] = 0;               // r15, r14, r13, r12, rbx, rbp
    sp[7] = reinterpret_cast<uintptr_t>(entry);           // where mfemu_switch's ret goes
    sp[8] = 0;                                            // entry's return address: none
    c.sp = sp;
}
#else
// Elsewhere: ucontext (swapcontext also saves the signal mask, a system call per switch).
struct Ctx { ucontext_t uc; };
ucontext_t ctxTemplate;
bool haveTemplate = false;

typedef const ucontext_t* CtxTarget;
CtxTarget target(const Ctx& c) { return &c.uc; }
void ctxSwitch(Ctx& save, CtxTarget resume) { swapcontext(&save.uc, resume); }

void ctxMake(Ctx& c, char* stack, size_t size, void (*entry)()) {
    if (!haveTemplate) { getcontext(&ctxTemplate); haveTemplate = true; }
    c.uc = ctxTemplate;
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif

struct Thr {
    Ctx ctx;
    St st = St::RUNNABLE;
    unsigned int vc[32];  // warp-sync clocks of the lanes of this thread's warp (own lane: its own clock)
    unsigned long long result = 0;
    const char* waitFile = "";
    int waitLine = 0;
    mfemu::WarpOp waitOp = mfemu::SYNCWARP;
    unsigned int waitMask = 0;
};

struct Coll {
    mfemu::WarpOp op;
    unsigned int mask, arrived;
    int width;
    const char* file;
    int line;
    unsigned long long val[32];
    int arg[32];
};

const size_t kSharedLimit = 48 * 1024;  // static shared memory per block on every GPU we target
const size_t kStack = 256 * 1024;
}  // namespace

namespace mfemu {
struct Acc { unsigned int tid, kind, clk; };

struct Cell {
    unsigned long long phase = 0;
    bool written = false;
    unsigned int nW = 0, nR = 0, nA = 0;
    std::vector<Acc> acc;  // accesses of the current barrier phase
};

struct SharedInfo {
    const void* key;
    const char* name;
    const char* file;
    int line;
    size_t elem, count, offset;
    std::vector<Cell> cells;
};
}  // namespace mfemu

namespace {
using mfemu::Acc;
using mfemu::Cell;
using mfemu::SharedInfo;

std::mutex launchLock;
unsigned long long baseSeed = 0x5eed, launchNo = 0, rngState = 0;
std::string kernelName, error;
bool fiberMode = false;
unsigned int n = 0, cur = 0, exited = 0, firstExited = 0;
std::vector<Thr> thr;
std::vector<char*> stacks;
Ctx mainCtx;
// The runnable threads, in no particular order, and each thread's index in it (a random pick is
// O(1): a block of 256 threads switches at every barrier, atomic and warp op)
std::vector<unsigned int> runq, runPos;
std::function<void()> body;
std::vector<std::vector<Coll>> warps;
std::vector<unsigned int> warpExited;
struct { unsigned int arrived = 0, count = 0, first = 0; const char* file = ""; int line = 0; } bar;
unsigned long long phase = 0;  // increases at every barrier and block, so shadow cells reset lazily
// The shared declarations bound by the running block; every declaration's bookkeeping is kept in
// sharedPool for the next block that binds it (its cells reset, their access lists' capacity kept:
// allocating them afresh for every block of 256 threads was the emulator's largest cost)
std::vector<SharedInfo*> shared;
std::vector<std::unique_ptr<SharedInfo>> sharedPool;
size_t sharedBytes = 0;
alignas(64) char arena[kSharedLimit];

#ifdef MFEMU_TSAN
// Fibers switch without implying order; these objects carry the orders the GPU guarantees.
char launchSync, endSync, barSync[2], warpSync[32];
std::vector<void*> tsanFibers;
void* mainFiber = nullptr;
#define TSAN_RELEASE(p) __tsan_release(p)
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
extern "C" void AnnotateIgnoreReadsBegin(const char* f, int l);
extern "C" void AnnotateIgnoreReadsEnd(const char* f, int l);
extern "C" void AnnotateIgnoreWritesBegin(const char* f, int l);
extern "C" void AnnotateIgnoreWritesEnd(const char* f, int l);
// How many Quiets are alive on each fiber (index: emulated thread) and on the launching thread. A
// fiber that leaves for good (it exits, goes back to main, or is abandoned when its block fails)
// never runs its Quiets' destructors, so its ignore counts stay raised; TSan fibers are reused by
// every later block, so each run of a fiber first drops what its previous run left (trampoline).
// Without that, every block after a fiber's first ran unchecked.
std::vector<int> fiberQuiet;
int mainQuiet = 0;
bool onFiber = false;
int& quietDepth() { return onFiber ? fiberQuiet[cur] : mainQuiet; }
// The emulator's own bookkeeping is shared by all fibers and is not the kernels' memory: hidden
// from ThreadSanitizer while a Quiet is alive (per fiber; nests).
struct Quiet {
    Quiet() { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); AnnotateIgnoreWritesBegin(__FILE__, __LINE__); quietDepth()++; }
    ~Quiet() { quietDepth()--; AnnotateIgnoreWritesEnd(__FILE__, __LINE__); AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
};
#else
struct Quiet {
    Quiet() { }  // user-provided, so an unused Quiet draws no warning
};
#define TSAN_RELEASE(p) ((void) 0)
#define TSAN_ACQUIRE(p) ((void) 0)
#endif

unsigned long long rnd() {  // splitmix64
    unsigned long long z = (rngState += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

[[noreturn]] void fail(const std::string& msg) { throw KernelError{msg}; }

std::string who(unsigned int t) { return fmt("thread %u (warp %u, lane %u)", t, t / 32, t % 32); }

const char* opName(mfemu::WarpOp op) {
    switch (op) {
        case mfemu::BALLOT: return "__ballot_sync";
        case mfemu::ALL: return "__all_sync";
        case mfemu::ANY: return "__any_sync";
        case mfemu::SHFL_IDX: return "__shfl_sync";
        case mfemu::SHFL_UP: return "__shfl_up_sync";
        case mfemu::SHFL_DOWN: return "__shfl_down_sync";
        case mfemu::SHFL_XOR: return "__shfl_xor_sync";
        case mfemu::SYNCWARP: return "__syncwarp";
    }
    return "?";
}

const char* base(const char* path) {
    const char* s = std::strrchr(path, '/');
    return s ? s + 1 : path;
}

void requireFiber(const char* what, const char* file, int line) {
    if (!fiberMode) {
        fail(fmt("uses %s (%s:%d), but the emulator runs it as independent threads: mark it cooperating in the table of "
                 "kernels/host/mf_emulator.cpp", what, base(file), line));
    }
}

// Where each unfinished thread waits, runs of equal threads folded: for deadlock reports.
std::string describeWaits() {
    std::string s;
    auto where = [](const Thr& t) -> std::string {
        switch (t.st) {
            case St::BARRIER: return fmt("wait at __syncthreads (%s:%d)", base(t.waitFile), t.waitLine);
            case St::WARP: return fmt("wait at %s (%s:%d, mask 0x%08x)", opName(t.waitOp), base(t.waitFile), t.waitLine, t.waitMask);
            case St::DONE: return "exited";
            case St::RUNNABLE: return "runnable";
        }
        return "?";
    };
    for (unsigned int t = 0; t < n;) {
        std::string w = where(thr[t]);
        unsigned int e = t + 1;
        while (e < n && where(thr[e]) == w) e++;
        if (!s.empty()) s += "; ";
        s += e == t + 1 ? fmt("thread %u ", t) : fmt("threads %u-%u ", t, e - 1);
        s += w;
        t = e;
    }
    return s;
}

// Every change of a thread's state goes through here, keeping runq the set of runnable threads.
void setState(unsigned int t, St st) {
    bool was = thr[t].st == St::RUNNABLE, is = st == St::RUNNABLE;
    thr[t].st = st;
    if (was && !is) {
        unsigned int last = runq.back();
        runq[runPos[t]] = last;
        runPos[last] = runPos[t];
        runq.pop_back();
    } else if (!was && is) {
        runPos[t] = (unsigned int) runq.size();
        runq.push_back(t);
    }
}

int pickRunnable() {
    if (runq.empty()) return -1;
    return (int) runq[rnd() % runq.size()];
}

void switchTo(unsigned int next) {
    if (next == cur) return;
    unsigned int prev = cur;
    cur = next;
    threadIdx.x = next;
    CtxTarget to = target(thr[next].ctx);
#ifdef MFEMU_TSAN
    __tsan_release(&endSync);  // even a fiber abandoned after an error is ordered before the launch's end
    __tsan_switch_to_fiber(tsanFibers[next], __tsan_switch_to_fiber_no_sync);
#endif
    ctxSwitch(thr[prev].ctx, to);
}

void goMain() {
    CtxTarget to = target(mainCtx);
#ifdef MFEMU_TSAN
    __tsan_release(&endSync);
    __tsan_switch_to_fiber(mainFiber, 0);
#endif
    ctxSwitch(thr[cur].ctx, to);
}

// The current thread cannot run on: hand over to a runnable one; none is a deadlock.
void blockCurrent() {
    int next = pickRunnable();
    if (next < 0) fail("deadlock: " + describeWaits());
    switchTo((unsigned int) next);
}

void tryComplete(unsigned int w, size_t idx) {
    Coll& c = warps[w][idx];
    unsigned int need = c.mask & ~warpExited[w];
    if ((c.arrived & need) != need) return;
    unsigned int parts = c.arrived;
    unsigned long long votes = 0;
    for (unsigned int l = 0; l < 32; l++) if ((parts >> l & 1) && c.val[l] != 0) votes |= 1ull << l;
    unsigned int joined[32] = {0};
    for (unsigned int l = 0; l < 32; l++) {
        if (!(parts >> l & 1)) continue;
        for (unsigned int k = 0; k < 32; k++) joined[k] = std::max(joined[k], thr[w * 32 + l].vc[k]);
    }
    for (unsigned int l = 0; l < 32; l++) {
        if (!(parts >> l & 1)) continue;
        unsigned long long r = 0;
        int seg = (int) (l & ~(unsigned int) (c.width - 1)), src = (int) l;
        switch (c.op) {
            case mfemu::BALLOT: r = votes; break;
            case mfemu::ALL: r = votes == parts; break;
            case mfemu::ANY: r = votes != 0; break;
            case mfemu::SYNCWARP: break;
            case mfemu::SHFL_IDX: src = seg + (((c.arg[l] % c.width) + c.width) % c.width); break;
            case mfemu::SHFL_UP: src = (int) l - c.arg[l]; if (src < seg) src = (int) l; break;
            case mfemu::SHFL_DOWN: src = (int) l + c.arg[l]; if (src >= seg + c.width) src = (int) l; break;
            case mfemu::SHFL_XOR: src = (int) l ^ c.arg[l]; if (src < seg || src >= seg + c.width) src = (int) l; break;
        }
        if (c.op >= mfemu::SHFL_IDX && c.op <= mfemu::SHFL_XOR) {
            if (!(parts >> src & 1)) {
                fail(fmt("%s (%s:%d): %s reads lane %d, which does not take part (mask 0x%08x, exited lanes 0x%08x)",
                         opName(c.op), base(c.file), c.line, who(w * 32 + l).c_str(), src, c.mask, warpExited[w]));
            }
            r = c.val[src];
        }
        Thr& t = thr[w * 32 + l];
        std::memcpy(t.vc, joined, sizeof joined);
        t.vc[l]++;
        t.result = r;
        setState(w * 32 + l, St::RUNNABLE);
    }
    warps[w].erase(warps[w].begin() + (long) idx);
}

void threadExit() {
    Quiet quiet;
    setState(cur, St::DONE);
    if (exited++ == 0) firstExited = cur;
    unsigned int w = cur / 32;
    warpExited[w] |= 1u << (cur % 32);
    TSAN_RELEASE(&endSync);
    if (bar.arrived > 0) {
        fail(fmt("exited while %u threads wait at __syncthreads (%s:%d): every thread of a block must reach each barrier",
                 bar.arrived, base(bar.file), bar.line));
    }
    for (size_t i = warps[w].size(); i-- > 0;) tryComplete(w, i);
    int next = pickRunnable();
    if (next >= 0) { switchTo((unsigned int) next); return; }
    if (exited != n) fail("deadlock: " + describeWaits());
}

void trampoline() {
    TSAN_ACQUIRE(&launchSync);
#ifdef MFEMU_TSAN
    // drop the ignores this TSan fiber's previous run left raised (see fiberQuiet)
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    int leaked = fiberQuiet[cur];
    fiberQuiet[cur] = 0;
    for (int i = 0; i <= leaked; i++) {
        AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
        AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
    }
#endif
    std::string msg;
    bool failed = false;
    try {
        body();
        threadExit();
    } catch (KernelError& e) {
        msg = e.msg;
        failed = true;
    }
    Quiet quiet;
    if (failed && error.empty()) error = fmt("%s: %s", who(cur).c_str(), msg.c_str());
    goMain();
}

void runBlockAsFibers() {
    thr.resize(n);
    while (stacks.size() < n) {
        void* s = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (s == MAP_FAILED) fail("cannot map a fiber stack");
        stacks.push_back(static_cast<char*>(s));
    }
#ifdef MFEMU_TSAN
    // the launching thread of this block (launches come from any host thread, one at a time): the
    // fibers switch back to it, not to whichever thread launched first
    mainFiber = __tsan_get_current_fiber();
    while (tsanFibers.size() < n) tsanFibers.push_back(__tsan_create_fiber(0));
    if (fiberQuiet.size() < n) fiberQuiet.resize(n, 0);
#endif
    runq.resize(n);
    runPos.resize(n);
    for (unsigned int t = 0; t < n; t++) {
        Thr& f = thr[t];
        f.st = St::RUNNABLE;
        runq[t] = t;
        runPos[t] = t;
        std::memset(f.vc, 0, sizeof f.vc);
        f.vc[t % 32] = 1;
        ctxMake(f.ctx, stacks[t], kStack, trampoline);
    }
    warps.assign((n + 31) / 32, {});
    warpExited.assign((n + 31) / 32, 0u);
    bar.arrived = 0;
    exited = 0;
    phase++;
    shared.clear();
    sharedBytes = 0;
    std::memset(arena, 0xA5, sizeof arena);  // fresh garbage for every block
    cur = (unsigned int) (rnd() % n);
    threadIdx.x = cur;
    CtxTarget first = target(thr[cur].ctx);
    TSAN_RELEASE(&launchSync);
#ifdef MFEMU_TSAN
    // written by the launching thread, under the launch lock, before ThreadSanitizer is told of the
    // switch: written after it, the store belongs to the fiber, which holds no lock, and the next
    // launch's store from another host thread is reported as a race with it
    onFiber = true;
    __tsan_switch_to_fiber(tsanFibers[cur], 0);
#endif
    ctxSwitch(mainCtx, first);
#ifdef MFEMU_TSAN
    onFiber = false;
#endif
    TSAN_ACQUIRE(&endSync);
}

std::vector<unsigned int> shuffled(unsigned int count) {
    std::vector<unsigned int> v(count);
    for (unsigned int i = 0; i < count; i++) v[i] = i;
    for (unsigned int i = count; i > 1; i--) std::swap(v[i - 1], v[rnd() % i]);
    return v;
}
}  // namespace

namespace mfemu {
bool inFiber() { return fiberMode; }

void yieldPoint() {
    Quiet quiet;
    if (!fiberMode) return;
    if (rnd() & 1) {
        int next = pickRunnable();
        if (next >= 0) switchTo((unsigned int) next);
    }
}

void atomicPoint() { yieldPoint(); }

SharedInfo* sharedBind(const void* key, const char* name, size_t elem, size_t count, const char* file, int line) {
    Quiet quiet;
    requireFiber("shared memory", file, line);
    for (SharedInfo* s : shared) if (s->key == key) return s;
    size_t off = (sharedBytes + 15) & ~(size_t) 15;
    if (off + elem * count > kSharedLimit) {
        fail(fmt("shared array %s[%zu] (%s:%d) takes the block's static shared memory past %zu bytes", name, count,
                 base(file), line, kSharedLimit));
    }
    SharedInfo* a = nullptr;
    for (auto& s : sharedPool) if (s->key == key && s->elem == elem && s->count == count) a = s.get();
    if (a == nullptr) {
        sharedPool.push_back(std::unique_ptr<SharedInfo>(new SharedInfo{key, name, file, line, elem, count, off, std::vector<Cell>(count)}));
        a = sharedPool.back().get();
    } else {
        // as new for this block: never written, no accesses (phase 0 is no phase's: sharedAccess then clears the list)
        for (Cell& c : a->cells) { c.written = false; c.phase = 0; }
        a->offset = off;
    }
    shared.push_back(a);
    sharedBytes = off + elem * count;
    return a;
}

char* sharedBase(SharedInfo* a) { return arena + a->offset; }

void sharedAccess(SharedInfo* a, long long i, Access kind) {
    Quiet quiet;
    static const char* verb[] = {"reads", "writes", "does an atomic on"};
    if (i < 0 || (unsigned long long) i >= a->count) {
        fail(fmt("out-of-bounds shared memory: %s %s[%lld] of %s[%zu] (%s:%d)", verb[kind], a->name, i, a->name, a->count,
                 base(a->file), a->line));
    }
    Cell& c = a->cells[(size_t) i];
    if (c.phase != phase) {
        c.phase = phase;
        c.acc.clear();
        c.nW = c.nR = c.nA = 0;
    }
    if (kind != WRITE && !c.written) {
        fail(fmt("%s shared %s[%lld] (%s:%d) before any thread of the block wrote it (shared memory starts undefined)",
                 verb[kind], a->name, i, base(a->file), a->line));
    }
    bool scan = kind == READ ? c.nW + c.nA > 0 : kind == ATOMIC ? c.nW + c.nR > 0 : !c.acc.empty();
    if (scan) {
        const Thr& me = thr[cur];
        for (const Acc& e : c.acc) {
            if (e.tid == cur) continue;
            bool conflict = e.kind == WRITE || kind == WRITE || (e.kind == ATOMIC) != (kind == ATOMIC);
            bool ordered = e.tid / 32 == cur / 32 && e.clk <= me.vc[e.tid % 32];
            if (conflict && !ordered) {
                fail(fmt("data race on shared %s[%lld] (%s:%d): it %s and %s %s it with no __syncthreads (or warp sync of "
                         "both lanes) between", a->name, i, base(a->file), a->line, verb[kind],
                         who(e.tid).c_str(), verb[e.kind]));
            }
        }
    }
    unsigned int clk = thr[cur].vc[cur % 32];
    if (!c.acc.empty() && c.acc.back().tid == cur && c.acc.back().kind == (unsigned int) kind) {
        c.acc.back().clk = clk;
    } else {
        c.acc.push_back({cur, (unsigned int) kind, clk});
        (kind == READ ? c.nR : kind == WRITE ? c.nW : c.nA)++;
    }
    if (kind != READ) c.written = true;
}

unsigned int barrier(int pred, const char* file, int line) {
    Quiet quiet;
    requireFiber("__syncthreads", file, line);
    yieldPoint();
    Thr& me = thr[cur];
    if (exited > 0) {
        fail(fmt("reaches __syncthreads (%s:%d) after %s exited: every thread of a block must reach each barrier",
                 base(file), line, who(firstExited).c_str()));
    }
    if (bar.arrived == 0) {
        bar.file = file;
        bar.line = line;
        bar.count = 0;
        bar.first = cur;
    } else if (bar.line != line || std::strcmp(bar.file, file) != 0) {
        fail(fmt("waits at __syncthreads (%s:%d) while %s waits at __syncthreads (%s:%d): a barrier some threads skip",
                 base(file), line, who(bar.first).c_str(), base(bar.file), bar.line));
    }
    unsigned int parity = (unsigned int) (phase & 1);
    (void) parity;
    bar.arrived++;
    bar.count += pred != 0;
    setState(cur, St::BARRIER);
    me.waitFile = file;
    me.waitLine = line;
    TSAN_RELEASE(&barSync[parity]);
    if (bar.arrived == n) {
        for (unsigned int t = 0; t < n; t++) {
            if (thr[t].st == St::BARRIER) { setState(t, St::RUNNABLE); thr[t].result = bar.count; }
        }
        bar.arrived = 0;
        phase++;
    } else {
        blockCurrent();
    }
    TSAN_ACQUIRE(&barSync[parity]);
    unsigned int r = (unsigned int) me.result;
    yieldPoint();
    return r;
}

unsigned long long warpOp(WarpOp op, unsigned int mask, unsigned long long value, int arg, int width, const char* file, int line) {
    Quiet quiet;
    requireFiber(opName(op), file, line);
    unsigned int lane = cur % 32, w = cur / 32;
    unsigned int inWarp = n - w * 32 >= 32 ? 32 : n - w * 32;
    unsigned int exists = inWarp == 32 ? 0xffffffffu : (1u << inWarp) - 1u;
    if (!(mask >> lane & 1)) {
        fail(fmt("calls %s (%s:%d) with mask 0x%08x, which does not name its own lane", opName(op), base(file), line, mask));
    }
    if (mask & ~exists) {
        fail(fmt("calls %s (%s:%d) with mask 0x%08x naming lanes that do not exist in a block of %u threads", opName(op),
                 base(file), line, mask, n));
    }
    if (width < 1 || width > 32 || (width & (width - 1)) != 0) fail(fmt("%s (%s:%d) with width %d", opName(op), base(file), line, width));
    yieldPoint();
    Thr& me = thr[cur];
    std::vector<Coll>& cs = warps[w];
    size_t idx = cs.size();
    for (size_t i = 0; i < cs.size(); i++) {
        if (cs[i].mask == mask && !(cs[i].arrived >> lane & 1)) { idx = i; break; }
    }
    if (idx < cs.size() && (cs[idx].op != op || cs[idx].width != width)) {
        fail(fmt("calls %s (%s:%d) while lanes of its warp wait at %s (%s:%d) with the same mask 0x%08x", opName(op),
                 base(file), line, opName(cs[idx].op), base(cs[idx].file), cs[idx].line, mask));
    }
    if (idx == cs.size()) cs.push_back(Coll{op, mask, 0u, width, file, line, {}, {}});
    cs[idx].val[lane] = value;
    cs[idx].arg[lane] = arg;
    cs[idx].arrived |= 1u << lane;
    setState(cur, St::WARP);
    me.waitFile = file;
    me.waitLine = line;
    me.waitOp = op;
    me.waitMask = mask;
    TSAN_RELEASE(&warpSync[w % 32]);
    tryComplete(w, idx);
    if (me.st != St::RUNNABLE) blockCurrent();
    TSAN_ACQUIRE(&warpSync[w % 32]);
    unsigned long long r = me.result;
    yieldPoint();
    return r;
}
}  // namespace mfemu
