/* kv_attention.cu — one new token per row over its KV cache on the GPU
 * (kernels/kv_attention.h): a block per (row, query head) scores the row's
 * positions (its prompt prefix, then its own) into the work buffer, takes
 * their max and sum by fixed-tree block reductions, and each thread then
 * owns output dimensions, summing the weighted values over the positions.
 * The index arrays (plen, order, start, len) are device memory too. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/attend_row.cuh"
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

__global__ void __launch_bounds__(KV_THREADS)
kv_attention_kernel(float *out, float *work, const float *q, const float *pk, const float *pv, const int64_t *plen,
                    const int64_t *order, const int64_t *start, const float *k, const float *v, const int64_t *len,
                    empo_kv_shape a) {
    const int64_t i = blockIdx.x / a.Hq, h = blockIdx.x % a.Hq, Dh = a.Dh;
    const int64_t p = group_of(start, a.P, i), b = order[i], kvh = h / (a.Hq / a.Hkv);
    const int64_t np = pk ? plen[p] : 0;
    const float *qr = q + (b * a.Hq + h) * Dh;
    float *o = out + (b * a.Hq + h) * Dh, *score = work + blockIdx.x * (a.Sp + a.S);
    const int64_t slot = (p * a.Hkv + kvh) * a.Sp * Dh;
    const float *pkh = pk ? pk + slot : nullptr, *pvh = pv ? pv + slot : nullptr;
    const float *kh = k + (b * a.Hkv + kvh) * a.S * Dh, *vh = v + (b * a.Hkv + kvh) * a.S * Dh;
    attend_row(o, score, qr, pkh, pvh, np, kh, vh, len[b], Dh, a.scale);
}

/* one score per position of every (row, head) */
int64_t kv_attention_work(const empo_kv_shape *a) { return a->B * a->Hq * (a->Sp + a->S); }

void kv_attention(float *out, float *work, const float *q, const float *pk, const float *pv, const int64_t *plen,
                  const int64_t *order, const int64_t *start, const float *k, const float *v, const int64_t *len,
                  const empo_kv_shape *a) {
    if (a->B * a->Hq > 0)
        EMPO_LAUNCH(kv_attention_kernel, (unsigned)(a->B * a->Hq), KV_THREADS, 0, out, work, q, pk, pv, plen, order,
                    start, k, v, len, *a);
}
EMPO_CUDA_END
