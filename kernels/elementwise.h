/* elementwise.h — elementwise kernels on raw f32 pointers.
 * Fast versions (cpu/elementwise.c) work on one row with element strides;
 * references (ref/elementwise.c) compute in double, one element at a time. */
#ifndef EMPO_KERNELS_ELEMENTWISE_H
#define EMPO_KERNELS_ELEMENTWISE_H
#include <stdint.h>

typedef enum {
    EMPO_BIN_ADD, EMPO_BIN_SUB, EMPO_BIN_MUL, EMPO_BIN_DIV, EMPO_BIN_POW,
    EMPO_BIN_MAX, EMPO_BIN_MIN, EMPO_BIN_EQ, EMPO_BIN_LT, EMPO_BIN_GT
} empo_binary_op;

typedef enum {
    EMPO_UN_NEG, EMPO_UN_EXP, EMPO_UN_LOG, EMPO_UN_SQRT, EMPO_UN_RSQRT, EMPO_UN_TANH,
    EMPO_UN_SIGMOID, EMPO_UN_SILU, EMPO_UN_RELU, EMPO_UN_ABS, EMPO_UN_GELU, EMPO_UN_GELU_TANH,
    EMPO_UN_ADD_S, EMPO_UN_MUL_S, EMPO_UN_POW_S, EMPO_UN_RSUB_S, EMPO_UN_RDIV_S, EMPO_UN_CLAMP
} empo_unary_op;

/* out[i] = a[i*sa] (op) b[i*sb], i < n */
typedef void empo_binary_fn(int op, float *out, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n);
empo_binary_fn empo_k_binary_f32, empo_ref_binary_f32;

/* out[i] = op(x[i]; p0, p1), contiguous */
typedef void empo_unary_fn(int op, float *out, const float *x, int64_t n, float p0, float p1);
empo_unary_fn empo_k_unary_f32, empo_ref_unary_f32;

/* gx[i] = g[i] * d op(x)/dx at x[i] (y[i] = op(x[i]) is given too) */
typedef void empo_unary_backward_fn(int op, float *gx, const float *g, const float *x, const float *y, int64_t n,
                                    float p0, float p1);
empo_unary_backward_fn empo_k_unary_backward_f32, empo_ref_unary_backward_f32;

/* y[i] = mask[i] ? a[i] : b[i] for n contiguous elements of esize bytes
 * (1, 2, 4 or 8): where and masked_fill on a device, after their operands
 * are broadcast whole (the CPU ops select through strides themselves) */
typedef void empo_select_fn(void *y, const uint8_t *mask, const void *a, const void *b, int64_t n, int esize);
empo_select_fn empo_ref_select;

#endif
