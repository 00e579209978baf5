/* reduce.cu — sum, max and (log-)softmax over one dim of a contiguous
 * (outer, n, inner) tensor on the GPU. A block reduces one (outer, inner)
 * line when lines are long; when they are short (n < 32) a thread does a
 * whole line. Sums are in double, in a fixed order. */
#include "kernels/cuda/block_reduce.cuh"

EMPO_CUDA_BEGIN
enum { THREADS = 256, SHORT_LINE = 32 };

/* line l of (outer, inner) starts at x + base(l) with stride inner */
__device__ __forceinline__ int64_t line_base(int64_t l, int64_t n, int64_t inner) {
    return (l / inner) * n * inner + l % inner;
}

__global__ void sum_lines_by_block(float *out, const float *x, int64_t lines, int64_t n, int64_t inner) {
    for (int64_t l = blockIdx.x; l < lines; l += gridDim.x) {
        const float *r = x + line_base(l, n, inner);
        double acc = 0;
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) acc += r[k * inner];
        acc = block_reduce(acc, sum_op());
        if (threadIdx.x == 0) out[l] = (float)acc;
    }
}
__global__ void sum_lines_by_thread(float *out, const float *x, int64_t lines, int64_t n, int64_t inner) {
    for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < lines; l += (int64_t)gridDim.x * blockDim.x) {
        const float *r = x + line_base(l, n, inner);
        double acc = 0;
        for (int64_t k = 0; k < n; k++) acc += r[k * inner];
        out[l] = (float)acc;
    }
}
void sum_dim(float *out, const float *x, int64_t outer, int64_t n, int64_t inner) {
    const int64_t lines = outer * inner;
    if (lines <= 0) return;
    if (n >= SHORT_LINE)
        EMPO_LAUNCH(sum_lines_by_block, blocks_for(lines, 1), THREADS, 0, out, x, lines, n, inner);
    else
        EMPO_LAUNCH(sum_lines_by_thread, blocks_for(lines, THREADS), THREADS, 0, out, x, lines, n, inner);
}

__global__ void max_lines(float *vals, int64_t *idx, const float *x, int64_t lines, int64_t n, int64_t inner) {
    for (int64_t l = blockIdx.x; l < lines; l += gridDim.x) {
        const float *r = x + line_base(l, n, inner);
        arg_pair best = {0.0f, -1};
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) best = argmax_op()(best, arg_pair{r[k * inner], k});
        best = block_reduce(best, argmax_op());
        if (threadIdx.x == 0) vals[l] = best.v, idx[l] = best.i;
    }
}
void max_dim(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t n, int64_t inner) {
    const int64_t lines = outer * inner;
    if (lines > 0 && n > 0) EMPO_LAUNCH(max_lines, blocks_for(lines, 1), THREADS, 0, vals, idx, x, lines, n, inner);
}

__global__ void softmax_lines(float *y, const float *x, int64_t lines, int64_t n, int64_t inner, int want_log) {
    for (int64_t l = blockIdx.x; l < lines; l += gridDim.x) {
        const int64_t base = line_base(l, n, inner);
        const float *r = x + base;
        float m = -INFINITY;
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) m = r[k * inner] > m ? r[k * inner] : m;
        m = block_reduce(m, max_op());
        double s = 0;
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += exp((double)r[k * inner] - m);
        s = block_reduce(s, sum_op());
        const double log_s = log(s);
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
            double z = (double)r[k * inner] - m;
            y[base + k * inner] = (float)(want_log ? z - log_s : exp(z) / s);
        }
    }
}
void softmax(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int want_log) {
    const int64_t lines = outer * inner;
    if (lines > 0 && n > 0)
        EMPO_LAUNCH(softmax_lines, blocks_for(lines, 1), THREADS, 0, y, x, lines, n, inner, want_log);
}

__global__ void softmax_backward_lines(float *gx, const float *g, const float *y, int64_t lines, int64_t n,
                                       int64_t inner, int want_log) {
    for (int64_t l = blockIdx.x; l < lines; l += gridDim.x) {
        const int64_t base = line_base(l, n, inner);
        double s = 0;
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
            int64_t j = base + k * inner;
            s += want_log ? (double)g[j] : (double)g[j] * y[j];
        }
        s = block_reduce(s, sum_op());
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
            int64_t j = base + k * inner;
            gx[j] = (float)(want_log ? g[j] - exp((double)y[j]) * s : y[j] * (g[j] - s));
        }
    }
}
void softmax_backward(float *gx, const float *g, const float *y, int64_t outer, int64_t n, int64_t inner,
                      int want_log) {
    const int64_t lines = outer * inner;
    if (lines > 0 && n > 0)
        EMPO_LAUNCH(softmax_backward_lines, blocks_for(lines, 1), THREADS, 0, gx, g, y, lines, n, inner, want_log);
}
EMPO_CUDA_END
