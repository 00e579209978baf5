/* fused_attention.cu — causal grouped-query attention, forward and
 * backward, on the GPU (the semantics of kernels/fused.h).
 *
 * Straightforward, not yet fast: a block per query row walks the keys in
 * tiles of TILE (a thread per key scores it, the block keeps a running
 * max and sum, a thread per head dim accumulates); the backward computes
 * dq the same way from the saved lse, and dk, dv with a block per key row
 * walking the queries of every head that reads it. No atomics, so the
 * gradients are reproducible. Hidden keys are never read. */
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/fused.h"

EMPO_CUDA_BEGIN
constexpr int64_t TILE = 128;
constexpr int MAX_DIMS_PER_THREAD = 8;   /* head dims up to TILE * 8 = 1024 */

__device__ __forceinline__ bool key_visible(const empo_attn_shape &a, const float *keep, int64_t b, int64_t t,
                                            int64_t s) {
    return s < a.S && (!a.causal || s <= t + (a.S - a.T)) && (!keep || keep[b * a.S + s] != 0.0f);
}
__device__ __forceinline__ float dot(const float *x, const float *y, int64_t n) {
    float acc = 0.0f;
    for (int64_t d = 0; d < n; d++) acc += x[d] * y[d];
    return acc;
}
/* the last key query t may see, plus one */
__device__ __forceinline__ int64_t keys_end(const empo_attn_shape &a, int64_t t) {
    int64_t end = a.causal ? t + (a.S - a.T) + 1 : a.S;
    return end < a.S ? (end > 0 ? end : 0) : a.S;
}

__global__ void __launch_bounds__(TILE) attention_forward_rows(float *out, float *lse, const float *q, const float *k,
                                                             const float *v, const float *keep, empo_attn_shape a) {
    EMPO_DYNAMIC_SHARED(float, shared);
    float *qs = shared, *score = qs + a.Dh, *p = score + TILE;
    const int64_t Dh = a.Dh, rows = a.B * a.Hq * a.T, rep = a.Hq / a.Hkv;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t t = r % a.T, h = (r / a.T) % a.Hq, b = r / (a.T * a.Hq);
        const float *kh = k + (b * a.Hkv + h / rep) * a.S * Dh, *vh = v + (b * a.Hkv + h / rep) * a.S * Dh;
        __syncthreads();
        for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) qs[d] = q[r * Dh + d];
        __syncthreads();
        float m = -INFINITY, acc[MAX_DIMS_PER_THREAD] = {0};
        double l = 0;
        const int64_t end = keys_end(a, t);
        for (int64_t s0 = 0; s0 < end; s0 += TILE) {
            const int64_t s = s0 + threadIdx.x;
            const float sc = s < end && key_visible(a, keep, b, t, s) ? dot(qs, kh + s * Dh, Dh) * a.scale : -INFINITY;
            const float tile_max = block_reduce(sc, max_op()), m_new = m > tile_max ? m : tile_max;
            if (m_new == -INFINITY) continue;   /* the same for the whole block */
            const float pj = sc == -INFINITY ? 0.0f : expf(sc - m_new);
            const double tile_sum = block_reduce((double)pj, sum_op());
            const float corr = m == -INFINITY ? 0.0f : expf(m - m_new);
            l = l * corr + tile_sum;
            m = m_new;
            score[threadIdx.x] = sc;
            p[threadIdx.x] = pj;
            __syncthreads();
            const int64_t n = end - s0 < TILE ? end - s0 : TILE;
            for (int64_t d = threadIdx.x, i = 0; d < Dh; d += blockDim.x, i++) {
                float acc_d = acc[i] * corr;
                for (int64_t j = 0; j < n; j++)
                    if (score[j] != -INFINITY) acc_d += p[j] * vh[(s0 + j) * Dh + d];
                acc[i] = acc_d;
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) lse[r] = m == -INFINITY ? -INFINITY : (float)(m + log(l));
        for (int64_t d = threadIdx.x, i = 0; d < Dh; d += blockDim.x, i++)
            out[r * Dh + d] = m == -INFINITY ? 0.0f : (float)(acc[i] / l);
    }
}

int64_t attention_work(const empo_attn_shape *a) { return a->B * a->Hq * a->T; }   /* delta per query row */

void attention_forward(float *out, float *lse, float *work, const float *q, const float *k, const float *v,
                       const float *keep, const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T;
    if (rows <= 0 || a->Dh <= 0) return;
    const size_t shared = sizeof(float) * (size_t)(a->Dh + 2 * TILE);
    EMPO_LAUNCH(attention_forward_rows, blocks_for(rows, 1), TILE, shared, out, lse, q, k, v, keep, *a);
}

/* delta[r] = dout[r] . out[r] = sum over keys of p dp (the softmax's backward term) */
__global__ void attention_delta_rows(float *delta, const float *dout, const float *out, int64_t rows, int64_t Dh) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        double acc = 0;
        for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) acc += (double)dout[r * Dh + d] * out[r * Dh + d];
        acc = block_reduce(acc, sum_op());
        if (threadIdx.x == 0) delta[r] = (float)acc;
    }
}

__global__ void __launch_bounds__(TILE) attention_dq_rows(float *dq, const float *dout, const float *q, const float *k,
                                                        const float *v, const float *keep, const float *lse,
                                                        const float *delta, empo_attn_shape a) {
    EMPO_DYNAMIC_SHARED(float, shared);
    float *qs = shared, *gs = qs + a.Dh, *ds = gs + a.Dh, *seen = ds + TILE;
    const int64_t Dh = a.Dh, rows = a.B * a.Hq * a.T, rep = a.Hq / a.Hkv;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t t = r % a.T, h = (r / a.T) % a.Hq, b = r / (a.T * a.Hq);
        const float *kh = k + (b * a.Hkv + h / rep) * a.S * Dh, *vh = v + (b * a.Hkv + h / rep) * a.S * Dh;
        const float L = lse[r], D = delta[r];
        __syncthreads();
        for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) qs[d] = q[r * Dh + d], gs[d] = dout[r * Dh + d];
        __syncthreads();
        float acc[MAX_DIMS_PER_THREAD] = {0};
        const int64_t end = L == -INFINITY ? 0 : keys_end(a, t);
        for (int64_t s0 = 0; s0 < end; s0 += TILE) {
            const int64_t s = s0 + threadIdx.x;
            const bool visible = s < end && key_visible(a, keep, b, t, s);
            float dsj = 0.0f;
            if (visible) {
                const float p = expf(dot(qs, kh + s * Dh, Dh) * a.scale - L);
                dsj = p * (dot(gs, vh + s * Dh, Dh) - D) * a.scale;
            }
            ds[threadIdx.x] = dsj;
            seen[threadIdx.x] = visible ? 1.0f : 0.0f;
            __syncthreads();
            const int64_t n = end - s0 < TILE ? end - s0 : TILE;
            for (int64_t d = threadIdx.x, i = 0; d < Dh; d += blockDim.x, i++)
                for (int64_t j = 0; j < n; j++)
                    if (seen[j] != 0.0f) acc[i] += ds[j] * kh[(s0 + j) * Dh + d];
            __syncthreads();
        }
        for (int64_t d = threadIdx.x, i = 0; d < Dh; d += blockDim.x, i++) dq[r * Dh + d] = acc[i];
    }
}

__global__ void __launch_bounds__(TILE) attention_dkv_rows(float *dk, float *dv, const float *dout, const float *q,
                                                         const float *k, const float *v, const float *keep,
                                                         const float *lse, const float *delta, empo_attn_shape a) {
    EMPO_DYNAMIC_SHARED(float, shared);
    float *ks = shared, *vs = ks + a.Dh, *pj = vs + a.Dh, *ds = pj + TILE, *seen = ds + TILE;
    const int64_t Dh = a.Dh, rows = a.B * a.Hkv * a.S, rep = a.Hq / a.Hkv;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t s = r % a.S, kvh = (r / a.S) % a.Hkv, b = r / (a.S * a.Hkv);
        __syncthreads();
        for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) ks[d] = k[r * Dh + d], vs[d] = v[r * Dh + d];
        __syncthreads();
        float gk[MAX_DIMS_PER_THREAD] = {0}, gv[MAX_DIMS_PER_THREAD] = {0};
        const bool kept = !keep || keep[b * a.S + s] != 0.0f;
        /* the first query that sees key s */
        const int64_t first = a.causal ? (s - (a.S - a.T) > 0 ? s - (a.S - a.T) : 0) : 0;
        for (int64_t h = kvh * rep; kept && h < (kvh + 1) * rep; h++) {
            const int64_t row0 = (b * a.Hq + h) * a.T;
            for (int64_t t0 = first; t0 < a.T; t0 += TILE) {
                const int64_t t = t0 + threadIdx.x;
                bool visible = t < a.T && key_visible(a, keep, b, t, s);
                float p = 0.0f, dsj = 0.0f;
                if (visible) {
                    const float L = lse[row0 + t];
                    visible = L != -INFINITY;
                    if (visible) {
                        p = expf(dot(q + (row0 + t) * Dh, ks, Dh) * a.scale - L);
                        dsj = p * (dot(dout + (row0 + t) * Dh, vs, Dh) - delta[row0 + t]) * a.scale;
                    }
                }
                pj[threadIdx.x] = p;
                ds[threadIdx.x] = dsj;
                seen[threadIdx.x] = visible ? 1.0f : 0.0f;
                __syncthreads();
                const int64_t n = a.T - t0 < TILE ? a.T - t0 : TILE;
                for (int64_t d = threadIdx.x, i = 0; d < Dh; d += blockDim.x, i++)
                    for (int64_t j = 0; j < n; j++)
                        if (seen[j] != 0.0f) {
                            gk[i] += ds[j] * q[(row0 + t0 + j) * Dh + d];
                            gv[i] += pj[j] * dout[(row0 + t0 + j) * Dh + d];
                        }
                __syncthreads();
            }
        }
        for (int64_t d = threadIdx.x, i = 0; d < Dh; d += blockDim.x, i++) {
            if (dk) dk[r * Dh + d] = gk[i];
            if (dv) dv[r * Dh + d] = gv[i];
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *work, const float *dout, const float *q,
                        const float *k, const float *v, const float *out, const float *keep, const float *lse,
                        const empo_attn_shape *a) {
    const int64_t qrows = a->B * a->Hq * a->T, kvrows = a->B * a->Hkv * a->S;
    if (qrows <= 0 || a->Dh <= 0) return;
    EMPO_LAUNCH(attention_delta_rows, blocks_for(qrows, 1), 64, 0, work, dout, out, qrows, a->Dh);
    if (dq)
        EMPO_LAUNCH(attention_dq_rows, blocks_for(qrows, 1), TILE, sizeof(float) * (size_t)(2 * a->Dh + 2 * TILE), dq,
                    dout, q, k, v, keep, lse, work, *a);
    if ((dk || dv) && kvrows > 0)
        EMPO_LAUNCH(attention_dkv_rows, blocks_for(kvrows, 1), TILE, sizeof(float) * (size_t)(2 * a->Dh + 3 * TILE),
                    dk, dv, dout, q, k, v, keep, lse, work, *a);
}
EMPO_CUDA_END
