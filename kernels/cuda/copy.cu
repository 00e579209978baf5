/* copy.cu — the strided copy (kernels/copy.h) on the GPU: a thread per
 * element, its offsets from its index, whole elements of 1 to 8 bytes. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/copy.h"

EMPO_CUDA_BEGIN
template <class T> __global__ void copy_elements(T *dst, const T *src, empo_strided_copy c, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rest = i, doff = 0, soff = 0;
        for (int d = c.ndim - 1; d >= 0; d--) {
            const int64_t k = rest % c.shape[d];
            rest /= c.shape[d];
            doff += k * c.dst_strides[d];
            soff += k * c.src_strides[d];
        }
        dst[doff] = src[soff];
    }
}

void copy_strided(void *dst, const void *src, const empo_strided_copy *c) {
    int64_t n = 1;
    for (int d = 0; d < c->ndim; d++) n *= c->shape[d];
    if (n <= 0) return;
    const unsigned blocks = blocks_for(n, 256, 4096);
    switch (c->esize) {
    case 8: EMPO_LAUNCH(copy_elements<uint64_t>, blocks, 256, 0, (uint64_t *)dst, (const uint64_t *)src, *c, n); break;
    case 4: EMPO_LAUNCH(copy_elements<uint32_t>, blocks, 256, 0, (uint32_t *)dst, (const uint32_t *)src, *c, n); break;
    case 2: EMPO_LAUNCH(copy_elements<uint16_t>, blocks, 256, 0, (uint16_t *)dst, (const uint16_t *)src, *c, n); break;
    default: EMPO_LAUNCH(copy_elements<uint8_t>, blocks, 256, 0, (uint8_t *)dst, (const uint8_t *)src, *c, n); break;
    }
}
EMPO_CUDA_END
