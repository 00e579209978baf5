/* index.c (cpu) — row gather and row scatter-add for embedding and
 * index_select (see kernels/index.h), split over threads by
 * empo_parallel_for when large. */
#include <string.h>
#include "kernels/parallel.h"
#include "kernels/index.h"

typedef struct {
    void *y;
    float *gx;
    const void *x;
    const float *gy;
    const int64_t *idx;
    int64_t D, K, inner, nblk;
    int esize;
} rows_job;

static void gather_range(void *ctx, int64_t lo, int64_t hi) {
    rows_job *j = ctx;
    size_t row = (size_t)j->inner * (size_t)j->esize;
    for (int64_t r = lo; r < hi; r++) {
        int64_t o = r / j->K, k = r % j->K;
        memcpy((char *)j->y + (size_t)r * row, (const char *)j->x + (size_t)(o * j->D + j->idx[k]) * row, row);
    }
}

void empo_k_index_rows(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                         int64_t inner, int esize) {
    rows_job j = {.y = y, .x = x, .idx = idx, .D = D, .K = K, .inner = inner, .esize = esize};
    empo_parallel_for(outer * K, outer * K * inner, gather_range, &j);
}

enum { COLS = 256 };

/* a unit of work is (o, a block of COLS columns), disjoint in gx */
static void scatter_range(void *ctx, int64_t lo, int64_t hi) {
    rows_job *j = ctx;
    for (int64_t u = lo; u < hi; u++) {
        int64_t o = u / j->nblk, c0 = (u % j->nblk) * COLS, c1 = c0 + COLS < j->inner ? c0 + COLS : j->inner;
        for (int64_t k = 0; k < j->K; k++) {
            float *dst = j->gx + (o * j->D + j->idx[k]) * j->inner;
            const float *src = j->gy + (o * j->K + k) * j->inner;
            #pragma omp simd
            for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

/* Repeated indices make rows of gx collide, so threads split the columns
 * instead; inside a unit k runs in order, as in the reference. */
void empo_k_index_rows_add(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                             int64_t inner) {
    rows_job j = {.gx = gx, .gy = gy, .idx = idx, .D = D, .K = K, .inner = inner,
                  .nblk = (inner + COLS - 1) / COLS};
    empo_parallel_for(outer * j.nblk, outer * K * inner, scatter_range, &j);
}
