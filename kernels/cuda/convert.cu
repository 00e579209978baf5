/* convert.cu — dtype conversion on the GPU (kernels/convert.h): a thread
 * per element, through the same element functions as the host. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/convert.h"

EMPO_CUDA_BEGIN
__global__ void convert_elements(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        empo_element_convert(dst, dst_dtype, src, src_dtype, i);
}

void convert(void *dst, int dst_dtype, const void *src, int src_dtype, int64_t n) {
    if (n > 0) EMPO_LAUNCH(convert_elements, blocks_for(n, 256), 256, 0, dst, dst_dtype, src, src_dtype, n);
}
EMPO_CUDA_END
