/* emu.h — just enough of CUDA for the kernels of kernels/cuda/ to run on
 * the host, so CI (which has no GPU) runs every CUDA kernel against the
 * reference table. Included by kernels/cuda/cuda_compat.cuh when a .cu
 * file is compiled as C++ with EMPO_CUDA_EMULATE.
 *
 * A launch runs its blocks one after another; a block's threads are
 * fibers on the calling thread, switched only at barriers, so:
 *   __syncthreads()      every live thread of the block waits for the rest;
 *   __shfl_*_sync        a barrier of the warp: each lane posts its value,
 *                        all read, then all wait again before the slot is
 *                        reused (a lane that exited or waits elsewhere is
 *                        a deadlock, reported with the kernel's name); a
 *                        warp whose lanes all arrived runs on at once, so
 *                        warps run ahead of each other up to __syncthreads;
 *   __shared__           a function-static, thread_local variable: one per
 *                        block, because blocks run one at a time;
 *   atomicAdd            a plain add (fibers never preempt each other).
 * Threads, warps and blocks run in index order, or in the reverse one
 * (EMPO_CUDA_EMULATION_ORDER=reverse; CI runs the kernel tests both ways).
 * That exposes the usual races: a read of what another thread writes
 * without a barrier between sees the write in one order and not in the
 * other. What this cannot show: a race that both orders happen to hide,
 * the memory model, timing and tensor cores. That is what the run on a
 * GPU (tests/device/check.sh, with compute-sanitizer's racecheck) is for. */
#ifndef EMPO_KERNELS_CUDA_EMU_H
#define EMPO_KERNELS_CUDA_EMU_H
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace empo_emu {
/* the fiber that runs now, and the launch it belongs to */
extern thread_local uint3 thread_idx, block_idx;
extern thread_local dim3 block_dim, grid_dim;
/* runs body once per thread of every block; name is for error messages.
 * While a graph is being captured the launch is recorded instead. */
void launch(const char *name, dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> &body);
/* work the device does that is not a kernel launch (the products' loop):
 * run now, or recorded while a graph is being captured */
void device_work(const std::function<void()> &work);
void sync_block();
/* threads, warps and blocks in reverse order from now on (or forward);
 * the default comes from EMPO_CUDA_EMULATION_ORDER (tests/cuda/emulation.cpp) */
void set_reverse_order(bool reverse);
/* posts this lane's 8 bytes, waits for the warp, returns lane src's */
uint64_t warp_exchange(uint64_t mine, int src_lane);
void *dynamic_shared();

template <class T> T shuffle(T v, int src_lane) {
    static_assert(sizeof(T) <= 8, "a shuffled value is at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    bits = warp_exchange(bits, src_lane);
    T out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}
inline int lane() { return (int)(thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z)) & 31; }
}  // namespace empo_emu

#define threadIdx (empo_emu::thread_idx)
#define blockIdx (empo_emu::block_idx)
#define blockDim (empo_emu::block_dim)
#define gridDim (empo_emu::grid_dim)
#define warpSize 32
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __restrict__ __restrict
#define __syncthreads() empo_emu::sync_block()

template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    (void)mask;
    return empo_emu::shuffle(v, empo_emu::lane() ^ lane_mask);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
    (void)mask;
    int src = empo_emu::lane() + (int)delta;
    return empo_emu::shuffle(v, src < 32 ? src : empo_emu::lane());
}
template <class T> inline T __shfl_sync(unsigned mask, T v, int src_lane) {
    (void)mask;
    return empo_emu::shuffle(v, src_lane & 31);
}
template <class T> inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <class T> inline T __ldg(const T *p) { return *p; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }

#define EMPO_DYNAMIC_SHARED(type, name) type *name = static_cast<type *>(empo_emu::dynamic_shared())
namespace empo_emu {
/* the kernel's arguments evaluated and copied now, as a CUDA launch copies
 * them: a graph replays the launch later (emu.cpp's capture) */
template <class F, class... A> std::function<void()> with_args(F f, A... args) {
    return [=] { f(args...); };
}
}  // namespace empo_emu
#define EMPO_LAUNCH(kernel, grid, block, shared_bytes, ...)                                              \
    empo_emu::launch(#kernel, (grid), (block), (shared_bytes),                                           \
                     empo_emu::with_args([](auto... args_) { kernel(args_...); }, __VA_ARGS__))
#endif
