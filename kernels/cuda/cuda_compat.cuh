/* cuda_compat.cuh — the one header every .cu file of kernels/cuda/ includes first.
 * Under nvcc it is CUDA itself; compiled as C++ with EMPO_CUDA_EMULATE the
 * same sources run on the host through kernels/cuda/emu/emu.h. The
 * kernels use only what both give: __global__/__device__, threadIdx and
 * friends, __shared__, __syncthreads, the *_sync shuffles, and launches
 * through EMPO_LAUNCH.
 *
 * Both builds are linked into one test program, so each puts its code in
 * a namespace of its own (EMPO_CUDA_BEGIN/END) and its table under its
 * own name (EMPO_CUDA_TABLE). */
#ifndef EMPO_KERNELS_CUDA_COMPAT_CUH
#define EMPO_KERNELS_CUDA_COMPAT_CUH
#include <stdint.h>

#ifdef EMPO_CUDA_EMULATE
#include "kernels/cuda/emu/emu.h"
#define EMPO_CUDA_NS empo_cuda_emulated
#define EMPO_CUDA_BEGIN namespace empo_cuda_emulated {
#define EMPO_CUDA_END }
#define EMPO_CUDA_TABLE empo_kernels_cuda_emulated
#define EMPO_CUDA_TABLE_NAME "cuda-emulated"
#define EMPO_CUDA_DEVICE empo_cuda_emulated_device
#else
#include <cuda_runtime.h>
#define EMPO_CUDA_NS empo_cuda
#define EMPO_CUDA_BEGIN namespace empo_cuda {
#define EMPO_CUDA_END }
#define EMPO_CUDA_TABLE empo_kernels_cuda
#define EMPO_CUDA_TABLE_NAME "cuda"
#define EMPO_CUDA_DEVICE empo_cuda_device
#define EMPO_DYNAMIC_SHARED(type, name) \
    extern __shared__ unsigned char empo_dynamic_shared_[]; \
    type *name = reinterpret_cast<type *>(empo_dynamic_shared_)
/* launches on the table's stream; a failed launch is kept for the next
 * synchronize (kernels/device.h) */
#define EMPO_LAUNCH(kernel, grid, block, shared_bytes, ...)                                  \
    do {                                                                                     \
        kernel<<<(grid), (block), (shared_bytes), empo_cuda::stream()>>>(__VA_ARGS__);       \
        empo_cuda::note_launch(#kernel);                                                     \
    } while (0)
namespace empo_cuda {
cudaStream_t stream();
void note_launch(const char *kernel);
}
#endif

#include "kernels/device.h"
extern "C" const empo_device_api EMPO_CUDA_DEVICE;

EMPO_CUDA_BEGIN
/* the one scratch buffer of the backend's own (reductions' partial sums),
 * grown as asked; lives for the process */
void *scratch(size_t bytes);

/* blocks of `threads` to cover n items, at most `cap` (kernels then loop) */
static inline unsigned blocks_for(int64_t n, int threads, int64_t cap = 65535) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : (b > cap ? cap : b));
}
EMPO_CUDA_END
#endif
