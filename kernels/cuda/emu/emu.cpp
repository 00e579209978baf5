/* emu.cpp — the host side of the CUDA emulation (emu.h): a block's
 * threads as fibers switched at barriers, and a device whose memory is an
 * arena of host memory that only kernels and copies may touch
 * (empo_cuda_emulated_device). */
#include "kernels/cuda/emu/emu.h"
#include "kernels/cuda/products.cuh"
#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>
#include "kernels/device.h"

/* ---- device memory: a reserved range, inaccessible to the host ----
 * Blocks are carved from one reserved mapping (never reused: a released
 * block's pages go back to the system), and the mapping is readable and
 * writable only while a kernel runs or a copy is made, so host code that
 * reads a device pointer by mistake crashes in the tests instead of
 * passing on this "device" and failing on a real one. */
namespace {
const size_t ARENA_BYTES = (size_t)1 << 37, PAGE = 4096;
struct arena {
    std::mutex lock;
    char *base = nullptr;
    size_t used = 0;
    std::unordered_map<void *, size_t> sizes;
};
arena device_memory;

void *arena_alloc(size_t bytes) {
    std::lock_guard<std::mutex> hold(device_memory.lock);
    if (!device_memory.base) {
        void *p = mmap(nullptr, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return nullptr;
        device_memory.base = static_cast<char *>(p);
    }
    size_t size = (bytes + PAGE - 1) / PAGE * PAGE;
    if (size == 0) size = PAGE;
    if (device_memory.used + size > ARENA_BYTES) return nullptr;
    char *p = device_memory.base + device_memory.used;
    device_memory.used += size;
    device_memory.sizes[p] = size;
    return p;
}

void arena_release(void *p) {
    std::lock_guard<std::mutex> hold(device_memory.lock);
    auto it = device_memory.sizes.find(p);
    if (it == device_memory.sizes.end()) return;
    madvise(p, it->second, MADV_DONTNEED);
    device_memory.sizes.erase(it);
}

/* the arena open to the host for the life of one launch or copy */
struct device_access {
    device_access() { protect(PROT_READ | PROT_WRITE); }
    ~device_access() { protect(PROT_NONE); }
    static void protect(int prot) {
        if (device_memory.used) mprotect(device_memory.base, device_memory.used, prot);
    }
};
}  // namespace

/* Switching fibers: save the callee-saved registers on this stack, park
 * the stack pointer in *save, take up `load`'s (glibc's swapcontext also
 * saves the signal mask, a system call per switch: ten times slower). */
#if !defined(__x86_64__)
#error "the CUDA emulation switches fibers with x86-64 code (empo_emu_switch)"
#endif
extern "C" void empo_emu_switch(void **save, void *load);
__asm__(R"(
    .text
    .globl empo_emu_switch
    .type empo_emu_switch, @function
empo_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size empo_emu_switch, .-empo_emu_switch
    .section .note.GNU-stack, "", @progbits
    .text
)");

namespace empo_emu {
thread_local uint3 thread_idx, block_idx;
thread_local dim3 block_dim, grid_dim;

namespace {
enum state { RUNNING, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };
enum { STACK_BYTES = 128 * 1024, MAX_THREADS = 1024, MAX_DYNAMIC_SHARED = 48 * 1024 };

struct fiber {
    void *sp;
    uint3 idx;
    state st;
    std::vector<char> stack;
};

/* one scheduler per host thread */
struct scheduler {
    void *home;
    std::vector<fiber> fibers;
    int current = 0;
    const std::function<void()> *body = nullptr;
    uint64_t warp_slots[MAX_THREADS];
    std::vector<unsigned char> shared;
};
thread_local scheduler sched;

/* where a fiber starts; it never returns, it is switched away from for good */
void fiber_main() {
    (*sched.body)();
    fiber &f = sched.fibers[sched.current];
    f.st = DONE;
    empo_emu_switch(&f.sp, sched.home);
}

void wait_at(state st) {
    fiber &f = sched.fibers[sched.current];
    f.st = st;
    empo_emu_switch(&f.sp, sched.home);
}

[[noreturn]] void deadlock(const char *name) {
    std::fprintf(stderr,
                 "cuda emulation: kernel %s, block (%u,%u,%u): deadlock: threads wait at different "
                 "barriers (a __syncthreads or a shuffle not reached by every live thread)\n",
                 name, block_idx.x, block_idx.y, block_idx.z);
    std::abort();
}

/* Releases the block barrier when every live thread reached it; returns
 * whether any thread may run. */
bool release_block_barrier(int n) {
    int live = 0;
    for (int t = 0; t < n; t++) {
        state s = sched.fibers[t].st;
        if (s == DONE) continue;
        if (s != AT_BLOCK_BARRIER) return false;
        live++;
    }
    for (int t = 0; t < n; t++)
        if (sched.fibers[t].st == AT_BLOCK_BARRIER) sched.fibers[t].st = RUNNING;
    return live > 0;
}

/* A fresh stack that empo_emu_switch "returns" into fiber_main from: six
 * zeroed registers, then fiber_main's address, placed so that fiber_main
 * starts with the stack aligned as after a call. */
void prepare(fiber &f, unsigned t) {
    f.idx = {t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
    f.st = RUNNING;
    uintptr_t top = ((uintptr_t)f.stack.data() + f.stack.size()) & ~(uintptr_t)15;
    void **sp = (void **)(top - 16);
    *sp = (void *)fiber_main;
    for (int r = 0; r < 6; r++) *--sp = nullptr;
    f.sp = sp;
}

/* The order threads run in between barriers, and warps and blocks in a
 * launch: index 0 first, or (EMPO_CUDA_EMULATION_ORDER=reverse) last. A GPU
 * promises neither, so a kernel that reads what another thread wrote
 * without a barrier between (or writes what another still has to read)
 * gives the reference's answer in at most one of the two orders: CI runs
 * the kernel tests in both. */
int order = -1;   /* 1: reverse, 0: forward, -1: not read from the environment yet */
bool reversed() {
    if (order < 0) {
        const char *o = std::getenv("EMPO_CUDA_EMULATION_ORDER");
        if (o && *o && std::strcmp(o, "forward") && std::strcmp(o, "reverse")) {
            std::fprintf(stderr, "cuda emulation: EMPO_CUDA_EMULATION_ORDER=%s: expected forward or reverse\n", o);
            std::exit(2);
        }
        order = o && !std::strcmp(o, "reverse");
    }
    return order == 1;
}

/* Runs warp w's threads as far as they go: a shuffle the whole warp
 * reached releases it at once, so a warp runs ahead of the others up to
 * its next __syncthreads (as a GPU's warps may), and a block's shared
 * memory is read and written in as many interleavings as that allows. */
void run_warp(int w, int n) {
    const int first = w * 32, end = first + 32 < n ? first + 32 : n;
    for (;;) {
        for (int i = first; i < end; i++) {
            const int t = reversed() ? first + end - 1 - i : i;
            if (sched.fibers[t].st != RUNNING) continue;
            sched.current = t;
            thread_idx = sched.fibers[t].idx;
            empo_emu_switch(&sched.home, sched.fibers[t].sp);
        }
        for (int t = first; t < end; t++)   /* a lane done or at __syncthreads leaves the rest waiting */
            if (sched.fibers[t].st != AT_WARP_BARRIER) return;
        for (int t = first; t < end; t++) sched.fibers[t].st = RUNNING;
    }
}

void run_block(const char *name, int n) {
    for (int t = 0; t < n; t++) prepare(sched.fibers[t], (unsigned)t);
    const int warps = (n + 31) / 32;
    for (;;) {
        for (int i = 0; i < warps; i++) run_warp(reversed() ? warps - 1 - i : i, n);
        bool done = true;
        for (int t = 0; t < n; t++) done &= sched.fibers[t].st == DONE;
        if (done) return;
        if (!release_block_barrier(n)) deadlock(name);
    }
}
}  // namespace

/* a graph being captured on this thread: the launches recorded for replay,
 * and whether a call the capture cannot hold came (a copy, a wait, an
 * allocation: CUDA refuses those in a capture too) */
thread_local std::vector<std::function<void()>> *recording;
thread_local bool capture_broken;

void device_work(const std::function<void()> &work) {
    if (recording) recording->push_back(work);
    else work();
}

void launch(const char *name, dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> &body) {
    if (recording) {
        recording->push_back([=] { launch(name, grid, block, shared_bytes, body); });
        return;
    }
    const long n = (long)block.x * block.y * block.z;
    if (n < 1 || n > MAX_THREADS || grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535) {
        std::fprintf(stderr, "cuda emulation: kernel %s: invalid launch (grid %u,%u,%u, block %u,%u,%u)\n", name,
                     grid.x, grid.y, grid.z, block.x, block.y, block.z);
        std::abort();
    }
    if (shared_bytes > MAX_DYNAMIC_SHARED) {   /* more needs cudaFuncSetAttribute, which the kernels never call */
        std::fprintf(stderr, "cuda emulation: kernel %s: %zu bytes of dynamic shared memory (a launch may ask 48 KiB)\n",
                     name, shared_bytes);
        std::abort();
    }
    if (sched.fibers.size() < (size_t)n) {
        sched.fibers.resize((size_t)n);
        for (fiber &f : sched.fibers)
            if (f.stack.empty()) f.stack.resize(STACK_BYTES);
    }
    sched.shared.assign(shared_bytes ? shared_bytes : 1, 0xA5);   /* not zero: kernels must not assume it */
    sched.body = &body;
    device_access open;
    grid_dim = grid;
    block_dim = block;
    const uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
    for (uint64_t i = 0; i < blocks; i++) {
        const uint64_t b = reversed() ? blocks - 1 - i : i;
        block_idx = {(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y), (unsigned)(b / grid.x / grid.y)};
        run_block(name, (int)n);
    }
}

void set_reverse_order(bool reverse) { order = reverse; }

void sync_block() { wait_at(AT_BLOCK_BARRIER); }

uint64_t warp_exchange(uint64_t mine, int src_lane) {
    const int t = sched.current, base = t & ~31;
    sched.warp_slots[t] = mine;
    wait_at(AT_WARP_BARRIER);
    const int src = base + src_lane;
    uint64_t got = src < (int)sched.fibers.size() ? sched.warp_slots[src] : mine;
    wait_at(AT_WARP_BARRIER);   /* nobody overwrites a slot before all have read */
    return got;
}

void *dynamic_shared() { return sched.shared.data(); }
}  // namespace empo_emu

/* ---- the emulated device: host memory behind the device interface ---- */
namespace {
int emu_count() { return 1; }
int emu_describe(int device, char *buf, size_t len) {
    std::snprintf(buf, len, "CUDA emulated on the host (device %d)", device);
    return 0;
}
void *emu_alloc(size_t bytes) { return arena_alloc(bytes); }
void emu_release(void *p) { arena_release(p); }
int emu_copy(void *dst, const void *src, size_t bytes) {
    if (empo_emu::recording) empo_emu::capture_broken = true;   /* (a real capture refuses a synchronous copy) */
    device_access open;
    if (bytes) std::memmove(dst, src, bytes);
    return 0;
}
int emu_zero(void *dst, size_t bytes) {
    if (empo_emu::recording) empo_emu::capture_broken = true;
    device_access open;
    std::memset(dst, 0, bytes);
    return 0;
}
int emu_synchronize() {
    if (empo_emu::recording) empo_emu::capture_broken = true;
    return 0;
}
/* graphs: the launches of a capture, replayed in order */
int emu_capture_begin() {
    if (empo_emu::recording) return -1;
    empo_emu::recording = new std::vector<std::function<void()>>();
    empo_emu::capture_broken = false;
    return 0;
}
int emu_capture_end(void **graph) {
    auto *g = empo_emu::recording;
    empo_emu::recording = nullptr;
    if (!g || empo_emu::capture_broken) {
        delete g;
        return -1;
    }
    *graph = g;
    return 0;
}
int emu_graph_launch(void *graph) {
    for (auto &work : *static_cast<std::vector<std::function<void()>> *>(graph)) work();
    return 0;
}
void emu_graph_free(void *graph) { delete static_cast<std::vector<std::function<void()>> *>(graph); }
const char *emu_last_error() { return "no error"; }
/* the emulated device's memory is the host's */
long long emu_total_bytes() { return (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE); }
}  // namespace

extern "C" const empo_device_api empo_cuda_emulated_device = {
    "cuda-emulated", emu_count, emu_describe, emu_alloc, emu_release, emu_copy,
    emu_copy, emu_copy, emu_zero, emu_synchronize, emu_last_error, emu_total_bytes,
    emu_capture_begin, emu_capture_end, emu_graph_launch, emu_graph_free,
};

/* ---- what the CUDA build's runtime.cu and gemm_lt.cu give the kernels ---- */
namespace empo_cuda_emulated {
void *scratch(size_t bytes) {
    static void *buffer;
    static size_t size;
    if (bytes > size && empo_emu::recording) empo_emu::capture_broken = true;   /* an allocation in a capture */
    if (bytes > size) {
        if (buffer) arena_release(buffer);
        buffer = arena_alloc(bytes);
        size = buffer ? bytes : 0;
    }
    return buffer;
}

/* TF32 allowed (empo_cuda_backend_tf32): f32 operands are rounded to
 * TF32's 10 mantissa bits (to nearest, ties away, as cvt.rna.tf32.f32),
 * as the tensor cores take them */
static int tf32_allowed;
static float to_tf32(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;   /* (infinities and NaN as they are) */
    std::memcpy(&x, &u, sizeof x);
    return x;
}

/* an element of an f32 (tf32: rounded to TF32) or bf16 matrix */
static double element(int bf16, int tf32, const void *M, int64_t at) {
    if (!bf16) return tf32 ? to_tf32(static_cast<const float *>(M)[at]) : static_cast<const float *>(M)[at];
    uint32_t bits = (uint32_t) static_cast<const uint16_t *>(M)[at] << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

/* cuBLAS's column-major product, as a plain loop (double accumulation),
 * once for each product of the batch */
void gemm_column_major(int bf16, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const void *A, int64_t lda, const void *B, int64_t ldb, float beta, float *C, int64_t ldc,
                       product_batch batch) {
    if (batch.count > 1) {
        const size_t size = bf16 ? 2 : 4;
        for (int64_t i = 0; i < batch.count; i++)
            gemm_column_major(bf16, trans_a, trans_b, m, n, k, alpha,
                              static_cast<const char *>(A) + i * batch.stride_a * size, lda,
                              static_cast<const char *>(B) + i * batch.stride_b * size, ldb, beta,
                              C + i * batch.stride_c, ldc, ONE_PRODUCT);
        return;
    }
    const int tf32 = tf32_allowed && !bf16;   /* (the setting when the product is asked for, as cuBLASLt's) */
    empo_emu::device_work([=] {   /* cuBLAS runs on the device (in a graph: at its replay) */
        device_access open;
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < m; i++) {
                double acc = 0;
                for (int64_t p = 0; p < k; p++)
                    acc += element(bf16, tf32, A, trans_a ? i * lda + p : p * lda + i) *
                           element(bf16, tf32, B, trans_b ? p * ldb + j : j * ldb + p);
                float &c = C[j * ldc + i];
                c = (float)(alpha * acc) + (beta == 0.0f ? 0.0f : beta * c);
            }
    });
}
}  // namespace empo_cuda_emulated

extern "C" int empo_cuda_backend_tf32(int allow) {   /* (gemm_lt.cu's, for the emulated products) */
    int prev = empo_cuda_emulated::tf32_allowed;
    empo_cuda_emulated::tf32_allowed = allow != 0;
    return prev;
}
