/* head_chunks.h — the chunked LM head + log-prob + entropy of
 * kernels/fused.h, composed from a table's own gemm and log-prob kernels:
 * every fast table (CPU, AVX-512, CUDA) fills its head slots with these
 * two functions and its kernels, so the chunking is written once. The
 * pointers are the table's (host or device); nothing here reads them. */
#ifndef EMPO_KERNELS_HEAD_CHUNKS_H
#define EMPO_KERNELS_HEAD_CHUNKS_H
#include "kernels/fused.h"
#include "kernels/gemm.h"
#include <stddef.h>

static inline void empo_head_chunks_forward(empo_gemm_fn *gemm, empo_logprob_entropy_forward_fn *score, float *logp,
                                            float *ent, float *lse, const float *h, const float *W,
                                            const int64_t *ids, int64_t N, int64_t D, int64_t V, float scale,
                                            int64_t chunk, float *work) {
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t c = N - n0 < chunk ? N - n0 : chunk;
        gemm(0, 1, c, V, D, scale, h + n0 * D, D, W, D, 0.0f, work, V);   /* logits of rows n0 .. n0+c-1 */
        score(logp + n0, ent + n0, lse + n0, work, ids + n0, c, V);
    }
}

static inline void empo_head_chunks_backward(empo_gemm_fn *gemm, empo_logprob_entropy_backward_fn *grad, float *dh,
                                             float *dW, const float *dlogp, const float *dent, const float *h,
                                             const float *W, const int64_t *ids, const float *lse, const float *ent,
                                             int64_t N, int64_t D, int64_t V, float scale, int64_t chunk,
                                             float *work) {
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t c = N - n0 < chunk ? N - n0 : chunk;
        gemm(0, 1, c, V, D, scale, h + n0 * D, D, W, D, 0.0f, work, V);
        /* the logits become their own gradient: each element is read before it is written */
        grad(work, dlogp ? dlogp + n0 : NULL, dent ? dent + n0 : NULL, work, ids + n0, lse + n0,
             ent ? ent + n0 : NULL, c, V);
        if (dh) gemm(0, 0, c, D, V, scale, work, V, W, D, 0.0f, dh + n0 * D, D);
        if (dW) gemm(1, 0, V, D, c, scale, work, V, h + n0 * D, D, 1.0f, dW, D);
    }
}

#endif
