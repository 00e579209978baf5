/* index.cu — row gather and row scatter-add (kernels/index.h) on the GPU.
 * The scatter-add gives each column of each outer slice to one thread,
 * which adds the rows in index order: repeated indices accumulate in the
 * order the reference uses, with no atomics, so results are reproducible. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/index.h"

EMPO_CUDA_BEGIN
enum { THREADS = 256 };

template <class T>
__global__ void gather_rows(T *y, const T *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K, int64_t inner) {
    const int64_t n = outer * K * inner;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = e % inner, k = (e / inner) % K, o = e / (inner * K);
        y[e] = x[(o * D + idx[k]) * inner + c];
    }
}

void index_rows(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K, int64_t inner,
                int esize) {
    /* any element size: whole elements of 8, 4, 2 or 1 bytes */
    const int unit = esize % 8 == 0 ? 8 : esize % 4 == 0 ? 4 : esize % 2 == 0 ? 2 : 1;
    const int64_t row = inner * (esize / unit), n = outer * K * row;
    if (n <= 0) return;
    const unsigned blocks = blocks_for(n, THREADS);
    switch (unit) {
    case 8: EMPO_LAUNCH(gather_rows<uint64_t>, blocks, THREADS, 0, (uint64_t *)y, (const uint64_t *)x, idx, outer, D, K, row); break;
    case 4: EMPO_LAUNCH(gather_rows<uint32_t>, blocks, THREADS, 0, (uint32_t *)y, (const uint32_t *)x, idx, outer, D, K, row); break;
    case 2: EMPO_LAUNCH(gather_rows<uint16_t>, blocks, THREADS, 0, (uint16_t *)y, (const uint16_t *)x, idx, outer, D, K, row); break;
    default: EMPO_LAUNCH(gather_rows<uint8_t>, blocks, THREADS, 0, (uint8_t *)y, (const uint8_t *)x, idx, outer, D, K, row); break;
    }
}

__global__ void scatter_add_rows(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                                 int64_t inner) {
    const int64_t columns = outer * inner;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < columns; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = e % inner, o = e / inner;
        for (int64_t k = 0; k < K; k++) gx[(o * D + idx[k]) * inner + c] += gy[(o * K + k) * inner + c];
    }
}
void index_rows_add(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K, int64_t inner) {
    if (outer * inner > 0 && K > 0)
        EMPO_LAUNCH(scatter_add_rows, blocks_for(outer * inner, THREADS), THREADS, 0, gx, gy, idx, outer, D, K, inner);
}
EMPO_CUDA_END
