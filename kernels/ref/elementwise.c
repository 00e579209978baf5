/* ref/elementwise.c — naive references for the elementwise kernels: one
 * element at a time, in double, by the definitions of elementwise_math.h. */
#include <string.h>
#include <math.h>
#include "kernels/elementwise_math.h"

void empo_ref_binary_f32(int op, float *out, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)empo_binary_value(op, a[i * sa], b[i * sb]);
}

void empo_ref_unary_f32(int op, float *out, const float *x, int64_t n, float p0, float p1) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)empo_unary_value(op, x[i], p0, p1);
}

void empo_ref_unary_backward_f32(int op, float *gx, const float *g, const float *x, const float *y, int64_t n,
                                 float p0, float p1) {
    for (int64_t i = 0; i < n; i++) gx[i] = (float)(g[i] * empo_unary_derivative(op, x[i], y[i], p0, p1));
}

void empo_ref_select(void *y, const uint8_t *mask, const void *a, const void *b, int64_t n, int esize) {
    char *py = y;
    const char *pa = a, *pb = b;
    for (int64_t i = 0; i < n; i++) memcpy(py + i * esize, (mask[i] ? pa : pb) + i * esize, (size_t)esize);
}
