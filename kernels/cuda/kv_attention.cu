/* kv_attention.cu — one new token per row over its KV cache on the GPU
 * (kernels/kv_attention.h). A block per (row, KV head) serves the g query
 * heads that share that KV head (grouped-query attention), so each key and
 * value row is read once for all g of them: the threads score the row's
 * positions (its prompt prefix, then its own) for every head into the work
 * buffer, each head's max and sum come from fixed-tree block reductions,
 * then each thread owns (head, dimension) outputs and sums the weighted
 * values over the positions. The index arrays (plen, order, start, len) are
 * device memory too. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/kv_attention.h"

EMPO_CUDA_BEGIN
constexpr int KV_THREADS = 128;

/* the group (prefix row) holding position i of order: start[p] <= i < start[p + 1] */
__device__ int64_t group_of(const int64_t *start, int64_t P, int64_t i) {
    int64_t lo = 0, hi = P - 1;
    while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (start[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* work: per block, g rows of Sp + S scores, then the g heads' sums */
__global__ void __launch_bounds__(KV_THREADS)
kv_attention_kernel(float *out, float *work, const float *q, const float *pk, const float *pv, const int64_t *plen,
                    const int64_t *order, const int64_t *start, const float *k, const float *v, const int64_t *len,
                    empo_kv_shape a) {
    const int64_t i = blockIdx.x / a.Hkv, kvh = blockIdx.x % a.Hkv, Dh = a.Dh, g = a.Hq / a.Hkv, L = a.Sp + a.S;
    const int64_t p = group_of(start, a.P, i), b = order[i];
    const int64_t np = pk ? plen[p] : 0, n = np + len[b];
    const int64_t slot = (p * a.Hkv + kvh) * a.Sp * Dh, own = (b * a.Hkv + kvh) * a.S * Dh;
    const float *qb = q + (b * a.Hq + kvh * g) * Dh;   /* the g query heads of this KV head, one after another */
    float *ob = out + (b * a.Hq + kvh * g) * Dh, *score = work + blockIdx.x * g * (L + 1), *z = score + g * L;
    for (int64_t s = threadIdx.x; s < n; s += blockDim.x) {
        const float *key = s < np ? pk + slot + s * Dh : k + own + (s - np) * Dh;
        for (int64_t j = 0; j < g; j++) {
            float dot = 0.0f;
            for (int64_t d = 0; d < Dh; d++) dot += qb[j * Dh + d] * key[d];
            score[j * L + s] = a.scale * dot;
        }
    }
    __syncthreads();
    for (int64_t j = 0; j < g; j++) {   /* each head's softmax over the positions */
        float m = -INFINITY;
        for (int64_t s = threadIdx.x; s < n; s += blockDim.x) m = score[j * L + s] > m ? score[j * L + s] : m;
        m = block_reduce(m, max_op());
        double sum = 0.0;
        for (int64_t s = threadIdx.x; s < n; s += blockDim.x) {
            score[j * L + s] = expf(score[j * L + s] - m);
            sum += score[j * L + s];
        }
        sum = block_reduce(sum, sum_op());   /* its barriers also publish the scores */
        if (threadIdx.x == 0) z[j] = (float)sum;
    }
    __syncthreads();
    for (int64_t e = threadIdx.x; e < g * Dh; e += blockDim.x) {
        const int64_t j = e / Dh, d = e % Dh;
        float acc = 0.0f;
        for (int64_t s = 0; s < n; s++)
            acc += score[j * L + s] * (s < np ? pv[slot + s * Dh + d] : v[own + (s - np) * Dh + d]);
        ob[e] = n > 0 ? (float)(acc / z[j]) : 0.0f;
    }
}

/* per (row, KV head): each of its query heads' scores and sum */
int64_t kv_attention_work(const empo_kv_shape *a) { return a->B * a->Hq * (a->Sp + a->S + 1); }

void kv_attention(float *out, float *work, const float *q, const float *pk, const float *pv, const int64_t *plen,
                  const int64_t *order, const int64_t *start, const float *k, const float *v, const int64_t *len,
                  const empo_kv_shape *a) {
    if (a->B * a->Hkv > 0)
        EMPO_LAUNCH(kv_attention_kernel, (unsigned)(a->B * a->Hkv), KV_THREADS, 0, out, work, q, pk, pv, plen, order,
                    start, k, v, len, *a);
}
EMPO_CUDA_END
