/* emulation.cpp — the CUDA emulation itself (kernels/cuda/emu/): that it
 * runs barriers and shuffles as CUDA does, that its two thread orders
 * expose the races CI relies on them to find, and that what a GPU refuses
 * (a deadlocked barrier, an oversized launch) stops the program with the
 * kernel's name instead of passing here and failing on a card. Each of
 * those runs in a child process, since the emulation aborts on them. */
#include "kernels/cuda/cuda_compat.cuh"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
extern "C" {
#include "check.h"
}

namespace {
__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* the barriers used right: each thread's value reaches every other */
__global__ void rotate_through_shared(int *out) {
    EMPO_DYNAMIC_SHARED(int, s);
    s[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x] + 1000 * (int)blockIdx.x;
}

/* a race: reads a neighbour's slot without a barrier after the writes */
__global__ void read_before_barrier(int *out) {
    EMPO_DYNAMIC_SHARED(int, s);
    s[threadIdx.x] = (int)threadIdx.x;
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
    __syncthreads();
}

/* a race a GPU shows and a lockstep emulation would not: two reductions
 * share the warps' partial sums with no barrier between the first's reads
 * and the second's writes (block_reduce.cuh without its trailing barrier) */
__global__ void reuse_partials_too_soon(float *out) {
    __shared__ float partial[2];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float v = warp_sum(1.0f);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    const float first = partial[0] + partial[1];
    v = warp_sum(2.0f);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    out[threadIdx.x] = first;
}

/* a shuffle some lanes of the warp never reach */
__global__ void shuffle_in_half_a_warp(float *out) {
    if (threadIdx.x < 16) out[threadIdx.x] = warp_sum(1.0f);
}

__global__ void nothing(int) {}

/* runs f in a child; whether it died of SIGABRT saying `needle` on stderr */
template <class F> bool aborts_saying(F f, const char *needle) {
    int pipe_fd[2];
    if (pipe(pipe_fd)) return false;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipe_fd[1], 2);
        close(pipe_fd[0]);
        f();
        _exit(0);
    }
    close(pipe_fd[1]);
    std::string said;
    char buf[512];
    for (ssize_t got; (got = read(pipe_fd[0], buf, sizeof buf)) > 0;) said.append(buf, (size_t)got);
    close(pipe_fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    const bool ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && said.find(needle) != std::string::npos;
    if (!ok) std::fprintf(stderr, "  the child said: %s", said.c_str());
    return ok;
}

void barriers_and_shuffles(bool reverse) {
    empo_emu::set_reverse_order(reverse);
    const int threads = 96, blocks = 3;
    std::vector<int> out(threads * blocks, -1);
    EMPO_LAUNCH(rotate_through_shared, blocks, threads, threads * sizeof(int), out.data());
    bool right = true;
    for (int b = 0; b < blocks; b++)
        for (int t = 0; t < threads; t++) right &= out[b * threads + t] == (t + 1) % threads + 1000 * b;
    CHECK(right);

    std::vector<float> sums(64, 0.0f);
    EMPO_LAUNCH(reuse_partials_too_soon, 1, 64, 0, sums.data());
    int stale = 0;   /* threads that read the second reduction's partial in the first's place */
    for (float v : sums) stale += v != 64.0f;
    check_report(__FILE__, __LINE__, stale > 0, "%s order: the reused partials' race was hidden (every thread read 64)",
                 reverse ? "reverse" : "forward");
}
}  // namespace

int main() {
    barriers_and_shuffles(false);
    barriers_and_shuffles(true);

    /* the unguarded read: forward, threads read before their neighbour
     * writes (all but the last, which reads thread 0's); reversed, only
     * the last reads before its neighbour (thread 0) writes */
    const int n = 64;
    int wrong[2];
    for (int reverse = 0; reverse < 2; reverse++) {
        empo_emu::set_reverse_order(reverse);
        std::vector<int> out(n, -1);
        EMPO_LAUNCH(read_before_barrier, 1, n, n * sizeof(int), out.data());
        wrong[reverse] = 0;
        for (int t = 0; t < n; t++) wrong[reverse] += out[t] != (t + 1) % n;
    }
    check_report(__FILE__, __LINE__, wrong[0] == n - 1 && wrong[1] == 1,
                 "a read without its barrier: %d wrong forward, %d wrong reversed (want %d and 1)", wrong[0],
                 wrong[1], n - 1);

    empo_emu::set_reverse_order(false);
    CHECK(aborts_saying(
        [] {
            std::vector<float> out(32);
            EMPO_LAUNCH(shuffle_in_half_a_warp, 1, 32, 0, out.data());
        },
        "kernel shuffle_in_half_a_warp, block (0,0,0): deadlock"));
    CHECK(aborts_saying([] { EMPO_LAUNCH(nothing, 1, 1025, 0, 0); }, "kernel nothing: invalid launch"));
    CHECK(aborts_saying([] { EMPO_LAUNCH(nothing, dim3(1, 65536), 32, 0, 0); }, "invalid launch (grid 1,65536,1"));
    CHECK(aborts_saying([] { EMPO_LAUNCH(nothing, 1, 32, 48 * 1024 + 4, 0); }, "49156 bytes of dynamic shared memory"));
    return check_finish("cuda_emulation");
}
