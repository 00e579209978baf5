/* fused_norm.cu — RMSNorm forward and backward on the GPU: a block per
 * row for the row's sum of squares and dot product (in double); dw by a
 * thread per column summing the rows in order, so it is reproducible. */
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/fused.h"

EMPO_CUDA_BEGIN
enum { THREADS = 256 };

__global__ void rmsnorm_rows(float *out, float *rstd, const float *x, const float *w, int64_t N, int64_t D, float eps) {
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *xr = x + n * D;
        double ss = 0;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) ss += (double)xr[j] * xr[j];
        ss = block_reduce(ss, sum_op());
        const float r = (float)(1.0 / sqrt(ss / (double)D + (double)eps));
        if (threadIdx.x == 0) rstd[n] = r;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) out[n * D + j] = (xr[j] * r) * w[j];
    }
}
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int64_t N, int64_t D, float eps) {
    if (N > 0 && D > 0) EMPO_LAUNCH(rmsnorm_rows, blocks_for(N, 1), THREADS, 0, out, rstd, x, w, N, D, eps);
}

__global__ void rmsnorm_dx_rows(float *dx, const float *dout, const float *x, const float *w, const float *rstd,
                                int64_t N, int64_t D) {
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *g = dout + n * D, *xr = x + n * D;
        double dot = 0;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) dot += (double)g[j] * w[j] * xr[j];
        dot = block_reduce(dot, sum_op());
        const double r = rstd[n];
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
            dx[n * D + j] = (float)(r * w[j] * g[j] - xr[j] * r * r * r * dot / (double)D);
    }
}
__global__ void rmsnorm_dw_columns(float *dw, const float *dout, const float *x, const float *rstd, int64_t N,
                                   int64_t D) {
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < D; j += (int64_t)gridDim.x * blockDim.x) {
        double acc = 0;
        for (int64_t n = 0; n < N; n++) acc += (double)dout[n * D + j] * x[n * D + j] * rstd[n];
        dw[j] = (float)acc;
    }
}
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      int64_t N, int64_t D) {
    if (N <= 0 || D <= 0) return;
    if (dw) EMPO_LAUNCH(rmsnorm_dw_columns, blocks_for(D, THREADS), THREADS, 0, dw, dout, x, rstd, N, D);
    if (dx) EMPO_LAUNCH(rmsnorm_dx_rows, blocks_for(N, 1), THREADS, 0, dx, dout, x, w, rstd, N, D);
}
EMPO_CUDA_END
