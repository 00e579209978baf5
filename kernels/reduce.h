/* reduce.h — reductions and softmax over one dim of a contiguous tensor
 * seen as (outer, n, inner): the reduced dim has n elements, stride inner. */
#ifndef EMPO_KERNELS_REDUCE_H
#define EMPO_KERNELS_REDUCE_H
#include <stdint.h>

/* out (outer, inner) = sum over n of x (outer, n, inner) */
void empo_k_sum_dim(float *out, const float *x, int64_t outer, int64_t n, int64_t inner);
void empo_ref_sum_dim(float *out, const float *x, int64_t outer, int64_t n, int64_t inner);
/* values and first argmax (outer, inner) over n; NaN wins (as in PyTorch) */
void empo_k_max_dim(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t n, int64_t inner);
void empo_ref_max_dim(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t n, int64_t inner);
/* y (outer, n, inner) = softmax or log_softmax of x over n */
void empo_k_softmax(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int want_log);
void empo_ref_softmax(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int want_log);
/* gx from g and y = (log_)softmax(x):
 *   softmax: gx = y * (g - sum(g * y));  log_softmax: gx = g - exp(y) * sum(g) */
void empo_k_softmax_backward(float *gx, const float *g, const float *y, int64_t outer, int64_t n, int64_t inner,
                             int want_log);
void empo_ref_softmax_backward(float *gx, const float *g, const float *y, int64_t outer, int64_t n, int64_t inner,
                               int want_log);

/* the kernel table's slot types (kernels/kernels.h) */
typedef void empo_sum_dim_fn(float *out, const float *x, int64_t outer, int64_t n, int64_t inner);
typedef void empo_max_dim_fn(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t n, int64_t inner);
typedef void empo_softmax_fn(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int want_log);
typedef void empo_softmax_backward_fn(float *gx, const float *g, const float *y, int64_t outer, int64_t n,
                                      int64_t inner, int want_log);

#endif
