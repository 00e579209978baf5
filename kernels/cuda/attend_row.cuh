/* attend_row.cuh — one query row's attention over positions kept in up to
 * two runs of keys and values (a prompt's slot, then a row's own cache):
 * what kv_attention.cu and decode_step.cu's prefill share. A block per
 * (row, head): each thread scores positions into `score` (global scratch,
 * one float per position), the max and the sum come from fixed-tree block
 * reductions, then each thread owns output dimensions. n1 + n2 = 0 gives
 * zeros. Every thread of the block must call it. */
#ifndef EMPO_KERNELS_CUDA_ATTEND_ROW_CUH
#define EMPO_KERNELS_CUDA_ATTEND_ROW_CUH
#include "kernels/cuda/block_reduce.cuh"

EMPO_CUDA_BEGIN
__device__ inline void attend_row(float *o, float *score, const float *q, const float *k1, const float *v1, int64_t n1,
                                  const float *k2, const float *v2, int64_t n2, int64_t Dh, float scale) {
    const int64_t n = n1 + n2;
    float m = -INFINITY;
    for (int64_t s = threadIdx.x; s < n; s += blockDim.x) {
        const float *key = s < n1 ? k1 + s * Dh : k2 + (s - n1) * Dh;
        float dot = 0.0f;
        for (int64_t d = 0; d < Dh; d++) dot += q[d] * key[d];
        score[s] = scale * dot;
        m = score[s] > m ? score[s] : m;
    }
    m = block_reduce(m, max_op());
    double z = 0.0;
    for (int64_t s = threadIdx.x; s < n; s += blockDim.x) {
        score[s] = expf(score[s] - m);
        z += score[s];
    }
    z = block_reduce(z, sum_op());   /* its barriers also publish score[] */
    for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
        float acc = 0.0f;
        for (int64_t s = 0; s < n; s++) acc += score[s] * (s < n1 ? v1[s * Dh + d] : v2[(s - n1) * Dh + d]);
        o[d] = n > 0 ? (float)(acc / z) : 0.0f;
    }
}
EMPO_CUDA_END
#endif
