/* fused_logprob.cu — token log-prob and entropy from logits on the GPU,
 * without a softmax in memory: a block per row walks the vocabulary twice
 * (a running log-sum-exp, then the entropy's sum), the backward once. */
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/fused.h"
#include "kernels/head_chunks.h"

EMPO_CUDA_BEGIN
enum { THREADS = 512 };

__global__ void logprob_entropy_rows(float *logp, float *ent, float *lse, const float *logits, const int64_t *ids,
                                     int64_t N, int64_t V) {
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *x = logits + n * V;
        lse_pair run = {-INFINITY, 0.0};
        for (int64_t j = threadIdx.x; j < V; j += blockDim.x) run = lse_op()(run, lse_pair{x[j], 1.0});
        run = block_reduce(run, lse_op());
        const double L = run.m + log(run.s);
        double h = 0;
        for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
            const double p = exp(x[j] - L);
            if (p > 0.0) h -= p * (x[j] - L);   /* p log p -> 0 as p -> 0 */
        }
        h = block_reduce(h, sum_op());
        if (threadIdx.x == 0) {
            lse[n] = (float)L;
            ent[n] = (float)h;
            logp[n] = (float)(x[ids[n]] - L);
        }
    }
}
void logprob_entropy_forward(float *logp, float *ent, float *lse, const float *logits, const int64_t *ids, int64_t N,
                             int64_t V) {
    if (N > 0 && V > 0)
        EMPO_LAUNCH(logprob_entropy_rows, blocks_for(N, 1), THREADS, 0, logp, ent, lse, logits, ids, N, V);
}

__global__ void logprob_entropy_backward_rows(float *dlogits, const float *dlogp, const float *dent,
                                              const float *logits, const int64_t *ids, const float *lse,
                                              const float *ent, int64_t N, int64_t V) {
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        const double gl = dlogp ? dlogp[n] : 0.0, ge = dent ? dent[n] : 0.0;
        const double L = lse[n], H = dent ? ent[n] : 0.0;
        const int64_t id = ids[n];
        for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
            const double lp = logits[n * V + j] - L, p = exp(lp);
            double g = (j == id ? gl : 0.0) - gl * p;   /* d logp */
            if (p > 0.0) g -= ge * p * (lp + H);         /* d entropy */
            dlogits[n * V + j] = (float)g;
        }
    }
}
void logprob_entropy_backward(float *dlogits, const float *dlogp, const float *dent, const float *logits,
                              const int64_t *ids, const float *lse, const float *ent, int64_t N, int64_t V) {
    if (N > 0 && V > 0)
        EMPO_LAUNCH(logprob_entropy_backward_rows, blocks_for(N, 1), THREADS, 0, dlogits, dlogp, dent, logits, ids,
                    lse, ent, N, V);
}

/* The chunked head: cuBLASLt's product (gemm.cu) and the kernels above (kernels/head_chunks.h). */
empo_gemm_fn gemm;
void head_logprob_forward(float *logp, float *ent, float *lse, const float *h, const float *W, const int64_t *ids,
                          int64_t N, int64_t D, int64_t V, float scale, int64_t chunk, float *work) {
    empo_head_chunks_forward(gemm, logprob_entropy_forward, logp, ent, lse, h, W, ids, N, D, V, scale, chunk, work);
}
void head_logprob_backward(float *dh, float *dW, const float *dlogp, const float *dent, const float *h,
                           const float *W, const int64_t *ids, const float *lse, const float *ent, int64_t N,
                           int64_t D, int64_t V, float scale, int64_t chunk, float *work) {
    empo_head_chunks_backward(gemm, logprob_entropy_backward, dh, dW, dlogp, dent, h, W, ids, lse, ent, N, D, V,
                              scale, chunk, work);
}
EMPO_CUDA_END
