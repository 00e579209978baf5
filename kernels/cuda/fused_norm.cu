/* fused_norm.cu — RMSNorm forward and backward on the GPU: a block per
 * row for the row's sum of squares and dot product (in double); dw from
 * partial sums over chunks of rows, added in a fixed order. */
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
/* dw in two passes, so that every column's N rows are not one thread's
 * serial loop (at Qwen's D of 896 that is 896 threads on a card of
 * thousands): partial sums over chunks of DW_ROWS rows, a thread per
 * (chunk, column), then each column's partials in chunk order. A fixed
 * order, so reproducible. */
enum { DW_ROWS = 64 };
__global__ void rmsnorm_dw_partials(double *partial, const float *dout, const float *x, const float *rstd, int64_t N,
                                    int64_t D) {
    const int64_t chunks = (N + DW_ROWS - 1) / DW_ROWS;
    for (int64_t c = blockIdx.y; c < chunks; c += gridDim.y) {
        const int64_t end = (c + 1) * DW_ROWS < N ? (c + 1) * DW_ROWS : N;
        for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < D; j += (int64_t)gridDim.x * blockDim.x) {
            double acc = 0;
            for (int64_t n = c * DW_ROWS; n < end; n++) acc += (double)dout[n * D + j] * x[n * D + j] * rstd[n];
            partial[c * D + j] = acc;
        }
    }
}
__global__ void rmsnorm_dw_sum(float *dw, const double *partial, int64_t chunks, int64_t D) {
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < D; j += (int64_t)gridDim.x * blockDim.x) {
        double acc = 0;
        for (int64_t c = 0; c < chunks; c++) acc += partial[c * D + j];
        dw[j] = (float)acc;
    }
}
static void rmsnorm_dw(float *dw, const float *dout, const float *x, const float *rstd, int64_t N, int64_t D) {
    const int64_t chunks = (N + DW_ROWS - 1) / DW_ROWS;
    double *partial = static_cast<double *>(scratch(sizeof(double) * (size_t)(chunks * D)));
    if (!partial) return;   /* (the allocation's error is kept for the next synchronize) */
    const dim3 grid(blocks_for(D, THREADS), (unsigned)(chunks < 65535 ? chunks : 65535));
    EMPO_LAUNCH(rmsnorm_dw_partials, grid, THREADS, 0, partial, dout, x, rstd, N, D);
    EMPO_LAUNCH(rmsnorm_dw_sum, blocks_for(D, THREADS), THREADS, 0, dw, partial, chunks, D);
}
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      int64_t N, int64_t D) {
    if (N <= 0 || D <= 0) return;
    if (dw) rmsnorm_dw(dw, dout, x, rstd, N, D);
    if (dx) EMPO_LAUNCH(rmsnorm_dx_rows, blocks_for(N, 1), THREADS, 0, dx, dout, x, w, rstd, N, D);
}
EMPO_CUDA_END
