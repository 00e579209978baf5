/* index.h — row-gather and row-scatter-add kernels behind embedding and
 * index_select (see core/ops/op_index.c). Shapes are the contiguous views
 *   x [outer, D, inner]  (D = size of the indexed dim, inner = row length)
 *   y [outer, K, inner]  (K = number of indices)
 * with idx [K] already checked to lie in [0, D). The _cpu versions use
 * OpenMP; the _ref versions are the naive loops they are tested against. */
#ifndef EMPO_KERNELS_INDEX_H
#define EMPO_KERNELS_INDEX_H
#include <stdint.h>

/* y[o, k, :] = x[o, idx[k], :], elements of esize bytes (any dtype) */
void empo_k_index_rows(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                         int64_t inner, int esize);
void empo_ref_index_rows(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                         int64_t inner, int esize);

/* gx[o, idx[k], :] += gy[o, k, :] over k = 0..K-1 in order (f32; repeated
 * indices accumulate; the order per element is fixed, so the result does
 * not depend on the thread count) */
void empo_k_index_rows_add(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                             int64_t inner);
void empo_ref_index_rows_add(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                             int64_t inner);

/* the kernel table's slot types (kernels/kernels.h) */
typedef void empo_index_rows_fn(void *y, const void *x, const int64_t *idx, int64_t outer, int64_t D, int64_t K,
                                int64_t inner, int esize);
typedef void empo_index_rows_add_fn(float *gx, const float *gy, const int64_t *idx, int64_t outer, int64_t D,
                                    int64_t K, int64_t inner);

#endif
