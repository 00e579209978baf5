/* adamw.cu — the optimizer's kernels on the GPU: AdamW elementwise (in
 * double, as the reference), the sum of squares for the global gradient
 * norm in two fixed passes (block partials, then one block adding them in
 * order: the same bits every run), and in-place scaling (elementwise.cu). */
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/adamw.h"

EMPO_CUDA_BEGIN
enum { THREADS = 256, PARTIALS = 1024 };

__global__ void adamw_kernel(float *p, float *m, float *v, const float *g, int64_t n, empo_adamw_scalars s) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const double gi = g[i];
        const double mi = (double)s.beta1 * m[i] + (double)s.one_minus_beta1 * gi;
        const double vi = (double)s.beta2 * v[i] + (double)s.one_minus_beta2 * gi * gi;
        double pi = (double)p[i] * s.decay;
        pi -= (double)s.step_size * mi / (sqrt(vi) / s.bc2_sqrt + s.eps);
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)pi;
    }
}
void adamw(float *p, float *m, float *v, const float *g, int64_t n, const empo_adamw_scalars *s) {
    if (n > 0) EMPO_LAUNCH(adamw_kernel, blocks_for(n, THREADS, 4096), THREADS, 0, p, m, v, g, n, *s);
}

__global__ void sumsq_partials(double *partial, const float *x, int64_t n) {
    double acc = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        acc += (double)x[i] * x[i];
    acc = block_reduce(acc, sum_op());
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
__global__ void sum_partials(double *total, const double *partial, int count) {
    double acc = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
    acc = block_reduce(acc, sum_op());
    if (threadIdx.x == 0) *total = acc;
}
double sumsq(const float *x, int64_t n) {
    if (n <= 0) return 0.0;
    double *partial = static_cast<double *>(scratch(sizeof(double) * (PARTIALS + 1)));
    if (!partial) return NAN;   /* the device said why (kernels/device.h) */
    const unsigned blocks = blocks_for(n, THREADS, PARTIALS);
    EMPO_LAUNCH(sumsq_partials, blocks, THREADS, 0, partial, x, n);
    EMPO_LAUNCH(sum_partials, 1, THREADS, 0, partial + PARTIALS, partial, (int)blocks);
    double total = NAN;
    EMPO_CUDA_DEVICE.download(&total, partial + PARTIALS, sizeof total);
    return total;
}
EMPO_CUDA_END
