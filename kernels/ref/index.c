/* index.c (ref) — naive row gather and scatter-add (see kernels/index.h):
 * the definition the OpenMP versions in kernels/cpu/index.c must match. */
#include <string.h>
#include "kernels/index.h"

void empo_ref_index_rows(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                         int64_t inner, int esize) {
    const char *xs = x;
    char *ys = y;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < inner; c++)
                memcpy(ys + ((o * K + k) * inner + c) * esize, xs + ((o * D + idx[k]) * inner + c) * esize,
                       (size_t)esize);
}

void empo_ref_index_rows_add(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                             int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < inner; c++)
                gx[(o * D + idx[k]) * inner + c] += gy[(o * K + k) * inner + c];
}
