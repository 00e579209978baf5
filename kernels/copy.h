/* copy.h — the strided copy: a view's elements into another layout (a
 * contiguous copy of a transposed view, for one). The CPU copies live in
 * core/tensor/tensor_copy.c with dtype conversion; this slot is what a
 * device table needs to make a view contiguous where the data lives. */
#ifndef EMPO_KERNELS_COPY_H
#define EMPO_KERNELS_COPY_H
#include <stdint.h>

enum { EMPO_COPY_MAX_DIMS = 8 };
typedef struct empo_strided_copy {
    int ndim, esize;                              /* element size in bytes: 1, 2, 4, 8 */
    int64_t shape[EMPO_COPY_MAX_DIMS];
    int64_t dst_strides[EMPO_COPY_MAX_DIMS];      /* in elements */
    int64_t src_strides[EMPO_COPY_MAX_DIMS];
} empo_strided_copy;

/* dst[index] = src[index] for every index of shape (pointers at the first element) */
typedef void empo_copy_strided_fn(void *dst, const void *src, const empo_strided_copy *c);
empo_copy_strided_fn empo_ref_copy_strided;
#endif
