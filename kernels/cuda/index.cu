/* index.cu — row gather and row scatter-add (kernels/index.h) on the GPU.
 * The scatter-add gives each element of gx to one thread, which adds its
 * rows in index order: repeated indices accumulate in the order the
 * reference uses, with no atomics, so results are reproducible. */
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

/* a thread per (column, slice of gx's rows): it walks all K indices in
 * order and adds those that fall in its slice, so each element of gx is
 * one thread's, summed in index order, while an embedding's backward (a
 * vocabulary of rows, few columns) still spreads over the card */
__global__ void scatter_add_rows(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                                 int64_t inner, int64_t slices) {
    const int64_t columns = outer * inner, span = (D + slices - 1) / slices;
    for (int64_t s = blockIdx.y; s < slices; s += gridDim.y) {
        const int64_t lo = s * span, hi = lo + span < D ? lo + span : D;
        for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < columns;
             e += (int64_t)gridDim.x * blockDim.x) {
            const int64_t c = e % inner, o = e / inner;
            for (int64_t k = 0; k < K; k++) {
                const int64_t r = idx[k];
                if (r >= lo && r < hi) gx[(o * D + r) * inner + c] += gy[(o * K + k) * inner + c];
            }
        }
    }
}
void index_rows_add(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K, int64_t inner) {
    const int64_t columns = outer * inner;
    if (columns <= 0 || K <= 0 || D <= 0) return;
    const int64_t want = (1 << 16) / columns, slices = want < 1 ? 1 : (want < D ? want : D);   /* ~65k threads */
    const dim3 grid(blocks_for(columns, THREADS), (unsigned)(slices < 65535 ? slices : 65535));
    EMPO_LAUNCH(scatter_add_rows, grid, THREADS, 0, gx, gy, idx, outer, D, K, inner, slices);
}
EMPO_CUDA_END
