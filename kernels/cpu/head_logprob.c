/* head_logprob.c — the CPU's chunked LM head + log-prob + entropy: its
 * sgemm and log-prob kernels, chunk by chunk (kernels/head_chunks.h). */
#include "kernels/head_chunks.h"

void empo_k_head_logprob_forward(float *logp, float *ent, float *lse, const float *h, const float *W,
                                 const int64_t *ids, int64_t N, int64_t D, int64_t V, float scale, int64_t chunk,
                                 float *work) {
    empo_head_chunks_forward(empo_k_gemm, empo_k_logprob_entropy_forward, logp, ent, lse, h, W, ids, N, D, V, scale,
                             chunk, work);
}

void empo_k_head_logprob_backward(float *dh, float *dW, const float *dlogp, const float *dent, const float *h,
                                  const float *W, const int64_t *ids, const float *lse, const float *ent, int64_t N,
                                  int64_t D, int64_t V, float scale, int64_t chunk, float *work) {
    empo_head_chunks_backward(empo_k_gemm, empo_k_logprob_entropy_backward, dh, dW, dlogp, dent, h, W, ids, lse, ent,
                              N, D, V, scale, chunk, work);
}
