/* elementwise.cu — elementwise kernels and SwiGLU on the GPU: grid-stride
 * loops computing in double by elementwise_math.h, the reference's own
 * definitions (these kernels are bound by memory, not arithmetic). */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/elementwise_math.h"
#include "kernels/fused.h"

EMPO_CUDA_BEGIN
#define GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)
enum { THREADS = 256, MAX_BLOCKS = 4096 };

__global__ void binary_kernel(int op, float *out, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
    GRID_STRIDE(i, n) out[i] = (float)empo_binary_value(op, a[i * sa], b[i * sb]);
}
void binary(int op, float *out, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n) {
    if (n > 0) EMPO_LAUNCH(binary_kernel, blocks_for(n, THREADS, MAX_BLOCKS), THREADS, 0, op, out, a, sa, b, sb, n);
}

__global__ void unary_kernel(int op, float *out, const float *x, int64_t n, float p0, float p1) {
    GRID_STRIDE(i, n) out[i] = (float)empo_unary_value(op, x[i], p0, p1);
}
void unary(int op, float *out, const float *x, int64_t n, float p0, float p1) {
    if (n > 0) EMPO_LAUNCH(unary_kernel, blocks_for(n, THREADS, MAX_BLOCKS), THREADS, 0, op, out, x, n, p0, p1);
}

__global__ void unary_backward_kernel(int op, float *gx, const float *g, const float *x, const float *y, int64_t n,
                                      float p0, float p1) {
    GRID_STRIDE(i, n) gx[i] = (float)(g[i] * empo_unary_derivative(op, x[i], y[i], p0, p1));
}
void unary_backward(int op, float *gx, const float *g, const float *x, const float *y, int64_t n, float p0, float p1) {
    if (n > 0)
        EMPO_LAUNCH(unary_backward_kernel, blocks_for(n, THREADS, MAX_BLOCKS), THREADS, 0, op, gx, g, x, y, n, p0, p1);
}

__global__ void swiglu_forward_kernel(float *out, const float *gate, const float *up, int64_t n) {
    GRID_STRIDE(i, n) out[i] = (float)(gate[i] * empo_sigmoid_value(gate[i]) * up[i]);
}
void swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    if (n > 0) EMPO_LAUNCH(swiglu_forward_kernel, blocks_for(n, THREADS, MAX_BLOCKS), THREADS, 0, out, gate, up, n);
}

__global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                       int64_t n) {
    GRID_STRIDE(i, n) {
        double g = gate[i], s = empo_sigmoid_value(g);
        if (dgate) dgate[i] = (float)(dout[i] * up[i] * s * (1.0 + g * (1.0 - s)));
        if (dup) dup[i] = (float)(dout[i] * g * s);
    }
}
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    if (n > 0)
        EMPO_LAUNCH(swiglu_backward_kernel, blocks_for(n, THREADS, MAX_BLOCKS), THREADS, 0, dgate, dup, dout, gate,
                    up, n);
}

__global__ void scale_kernel(float *x, int64_t n, float s) {
    GRID_STRIDE(i, n) x[i] *= s;
}
void scale(float *x, int64_t n, float s) {
    if (n > 0) EMPO_LAUNCH(scale_kernel, blocks_for(n, THREADS, MAX_BLOCKS), THREADS, 0, x, n, s);
}
template <class T> __global__ void select_elements(T *y, const uint8_t *mask, const T *a, const T *b, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = mask[i] ? a[i] : b[i];
}

template <class T> static void select_as(void *y, const uint8_t *mask, const void *a, const void *b, int64_t n) {
    EMPO_LAUNCH(select_elements<T>, blocks_for(n, 256), 256, 0, (T *)y, mask, (const T *)a, (const T *)b, n);
}

/* the elements as unsigned integers of their size: a select moves bits */
void select(void *y, const uint8_t *mask, const void *a, const void *b, int64_t n, int esize) {
    if (n <= 0) return;
    if (esize == 1) select_as<uint8_t>(y, mask, a, b, n);
    else if (esize == 2) select_as<uint16_t>(y, mask, a, b, n);
    else if (esize == 4) select_as<uint32_t>(y, mask, a, b, n);
    else select_as<uint64_t>(y, mask, a, b, n);
}
EMPO_CUDA_END
