/* index.c (cpu) — row gather and row scatter-add for embedding and
 * index_select (see kernels/index.h), parallel with OpenMP. */
#include <string.h>
#include "internal.h"
#include "index.h"

void empo_index_rows_cpu(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                         int64_t inner, int esize) {
    size_t row = (size_t)inner * (size_t)esize;
    int64_t rows = outer * K;
    #pragma omp parallel for num_threads(empo_omp_threads_for(rows * inner)) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t o = r / K, k = r % K;
        memcpy((char *)y + (size_t)r * row, (const char *)x + (size_t)(o * D + idx[k]) * row, row);
    }
}

/* Repeated indices make rows of gx collide, so threads split the columns
 * instead: a unit of work is (o, a block of columns), disjoint in gx, and
 * inside it k runs in order, as in the reference. */
void empo_index_rows_add_cpu(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                             int64_t inner) {
    enum { COLS = 256 };
    int64_t nblk = (inner + COLS - 1) / COLS, units = outer * nblk;
    #pragma omp parallel for num_threads(empo_omp_threads_for(outer * K * inner)) schedule(static)
    for (int64_t u = 0; u < units; u++) {
        int64_t o = u / nblk, c0 = (u % nblk) * COLS, c1 = c0 + COLS < inner ? c0 + COLS : inner;
        for (int64_t k = 0; k < K; k++) {
            float *dst = gx + (o * D + idx[k]) * inner;
            const float *src = gy + (o * K + k) * inner;
            #pragma omp simd
            for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}
