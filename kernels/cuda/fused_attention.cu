/* fused_attention.cu — causal grouped-query attention, forward and
 * backward, on the GPU (the semantics of kernels/fused.h), through the
 * backend's matrix products (cuBLASLt: the tensor cores when TF32 is
 * allowed) and three small kernels of its own.
 *
 * The rep query heads that read one KV head are consecutive in q, so a KV
 * group's queries are one (rep T, Dh) matrix, contiguous in q, out, lse
 * and dq, and consecutive groups sit a fixed stride apart: a slab of
 * groups is one batched product with their K^T. A slab holds at most
 * SCORE_FLOATS scores (several whole groups, or a chunk of one group's
 * rows), so memory stays bounded at any length:
 *   forward   P = scale Q K^T; a softmax over the keys each row sees, its
 *             lse kept; out = P V
 *   backward  P again from the lse; dS = P (dout V^T - delta) scale, with
 *             delta = rowsum(dout * out); dq = dS K; dk += dS^T Q;
 *             dv += P^T dout
 * The products see every key; the kernels give hidden and future keys a
 * zero probability, and with a keep mask the slab's K and V are first
 * copied with hidden rows zeroed, so what a hidden key holds (NaN, say)
 * never reaches a product. No atomics, a fixed order for every sum:
 * results are reproducible. */
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/products.cuh"
#include "kernels/fused.h"

EMPO_CUDA_BEGIN
/* scores formed at once, per buffer (32 MiB); the emulation forms smaller
 * slabs, so that its tests cross slab borders at their small shapes */
#ifdef EMPO_CUDA_EMULATE
constexpr int64_t SCORE_FLOATS = 4096;
#else
constexpr int64_t SCORE_FLOATS = (int64_t)8 << 20;
#endif

__device__ __forceinline__ int64_t keys_end(const empo_attn_shape &a, int64_t t) {   /* the last key t sees, plus one */
    int64_t end = a.causal ? t + (a.S - a.T) + 1 : a.S;
    return end < a.S ? (end > 0 ? end : 0) : a.S;
}
__device__ __forceinline__ bool key_visible(const empo_attn_shape &a, const float *keep, int64_t b, int64_t t,
                                            int64_t s) {
    return s < keys_end(a, t) && (!keep || keep[b * a.S + s] != 0.0f);
}

/* A slab: n groups from group g0, m rows of each from row r0 of the
 * group; slab row r is group g0 + r / m's row r0 + r % m */
struct slab {
    int64_t g0, n, r0, m;
};
__device__ __forceinline__ int64_t batch_row(const slab &sl, int64_t r, const empo_attn_shape &a) {
    return (sl.g0 + r / sl.m) / a.Hkv;
}
__device__ __forceinline__ int64_t query_of(const slab &sl, int64_t r, const empo_attn_shape &a) {
    return (sl.r0 + r % sl.m) % a.T;
}

/* the slab's K and V with the keys its batch rows hide zeroed */
__global__ void hide_keys(float *dk, float *dv, const float *k, const float *v, const float *keep, slab sl,
                          empo_attn_shape a) {
    const int64_t n = sl.n * a.S * a.Dh;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t s = e / a.Dh % a.S, b = (sl.g0 + e / (a.S * a.Dh)) / a.Hkv;
        const bool kept = keep[b * a.S + s] != 0.0f;
        dk[e] = kept ? k[e] : 0.0f;
        dv[e] = kept ? v[e] : 0.0f;
    }
}

/* the slab's rows of scaled scores -> probabilities over the keys each
 * row sees, in place, and each row's log-sum-exp; a row that sees no key
 * gets zeros and -inf */
__global__ void softmax_rows(float *p, float *lse, slab sl, const float *keep, empo_attn_shape a) {
    for (int64_t r = blockIdx.x; r < sl.n * sl.m; r += gridDim.x) {
        const int64_t t = query_of(sl, r, a), b = batch_row(sl, r, a);
        float *row = p + r * a.S;
        float m = -INFINITY;
        for (int64_t s = threadIdx.x; s < a.S; s += blockDim.x)
            if (key_visible(a, keep, b, t, s) && row[s] > m) m = row[s];
        m = block_reduce(m, max_op());
        double z = 0.0;
        for (int64_t s = threadIdx.x; s < a.S; s += blockDim.x)
            if (m != -INFINITY && key_visible(a, keep, b, t, s)) z += expf(row[s] - m);
        z = block_reduce(z, sum_op());
        for (int64_t s = threadIdx.x; s < a.S; s += blockDim.x)
            row[s] = m != -INFINITY && key_visible(a, keep, b, t, s) ? (float)(expf(row[s] - m) / z) : 0.0f;
        if (threadIdx.x == 0) lse[r] = m == -INFINITY ? -INFINITY : (float)(m + log(z));
    }
}

/* the slab's scaled scores and dout.v -> P from the saved lse, and
 * dS = P (dout.v - delta) scale; zero where a row does not see the key */
__global__ void score_grads(float *p, float *ds, slab sl, const float *lse, const float *delta, const float *keep,
                            empo_attn_shape a) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < sl.n * sl.m * a.S;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / a.S, s = e % a.S;
        const bool seen = lse[r] != -INFINITY && key_visible(a, keep, batch_row(sl, r, a), query_of(sl, r, a), s);
        const float pe = seen ? expf(p[e] - lse[r]) : 0.0f;
        ds[e] = seen ? pe * (ds[e] - delta[r]) * a.scale : 0.0f;
        p[e] = pe;
    }
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

/* ---- the host side: a slab at a time ---- */

/* groups a slab holds (several whole ones when they fit) and rows of each */
static slab slab_shape(const empo_attn_shape *a) {
    const int64_t group = a->Hq / a->Hkv * a->T, S = a->S > 0 ? a->S : 1, groups = a->B * a->Hkv;
    if (group * S <= SCORE_FLOATS) {
        const int64_t n = SCORE_FLOATS / (group * S);
        return {0, n < groups ? n : groups, 0, group};
    }
    const int64_t m = SCORE_FLOATS / S;
    return {0, 1, 0, m > 1 ? m : 1};
}

/* work: delta per query row, then a slab's scores (P) and their gradients
 * (dS), then its K and V with hidden rows zeroed */
int64_t attention_work(const empo_attn_shape *a) {
    const slab sl = slab_shape(a);
    return a->B * a->Hq * a->T + 2 * sl.n * sl.m * a->S + 2 * sl.n * a->S * a->Dh;
}
struct work_parts {
    float *delta, *p, *ds, *k, *v;
};
static work_parts carve(float *work, const empo_attn_shape *a) {
    const slab sl = slab_shape(a);
    work_parts w;
    w.delta = work;
    w.p = w.delta + a->B * a->Hq * a->T;
    w.ds = w.p + sl.n * sl.m * a->S;
    w.k = w.ds + sl.n * sl.m * a->S;
    w.v = w.k + sl.n * a->S * a->Dh;
    return w;
}

/* Calls each(sl) for every slab, in order: n groups from g0 (the last
 * slab may hold fewer), m rows of each from r0; kg and vg are the slab's
 * K and V (hidden keys zeroed in w's copies when keep). */
template <class F>
static void for_each_slab(const empo_attn_shape *a, const work_parts &w, const float *k, const float *v,
                          const float *keep, F each) {
    const slab shape = slab_shape(a);
    const int64_t group = a->Hq / a->Hkv * a->T, groups = a->B * a->Hkv, SD = a->S * a->Dh;
    for (int64_t g0 = 0; g0 < groups; g0 += shape.n) {
        const int64_t n = groups - g0 < shape.n ? groups - g0 : shape.n;
        const float *kg = k + g0 * SD, *vg = v + g0 * SD;
        if (keep && SD > 0) {
            const slab whole = {g0, n, 0, 1};
            EMPO_LAUNCH(hide_keys, blocks_for(n * SD, 256, 4096), 256, 0, w.k, w.v, kg, vg, keep, whole, *a);
            kg = w.k, vg = w.v;
        }
        for (int64_t r0 = 0; r0 < group; r0 += shape.m) {
            const slab sl = {g0, n, r0, group - r0 < shape.m ? group - r0 : shape.m};
            each(sl, kg, vg);
        }
    }
}

void attention_forward(float *out, float *lse, float *work, const float *q, const float *k, const float *v,
                       const float *keep, const empo_attn_shape *a) {
    if (a->B * a->Hq * a->T <= 0 || a->Dh <= 0) return;
    const int64_t S = a->S, Dh = a->Dh, group = a->Hq / a->Hkv * a->T;
    const work_parts w = carve(work, a);
    for_each_slab(a, w, k, v, keep, [&](const slab &sl, const float *kg, const float *vg) {
        const int64_t row = sl.g0 * group + sl.r0;   /* the slab's first row of q, out and lse */
        gemm_strided(0, 1, sl.m, S, Dh, a->scale, q + row * Dh, Dh, kg, Dh, 0.0f, w.p, S,
                     {sl.n, group * Dh, S * Dh, sl.m * S});
        EMPO_LAUNCH(softmax_rows, blocks_for(sl.n * sl.m, 1), 128, 0, w.p, lse + row, sl, keep, *a);
        gemm_strided(0, 0, sl.m, Dh, S, 1.0f, w.p, S, vg, Dh, 0.0f, out + row * Dh, Dh,
                     {sl.n, sl.m * S, S * Dh, group * Dh});
    });
}

void attention_backward(float *dq, float *dk, float *dv, float *work, const float *dout, const float *q,
                        const float *k, const float *v, const float *out, const float *keep, const float *lse,
                        const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T;
    if (rows <= 0 || a->Dh <= 0) return;
    const int64_t S = a->S, Dh = a->Dh, group = a->Hq / a->Hkv * a->T;
    const work_parts w = carve(work, a);
    EMPO_LAUNCH(attention_delta_rows, blocks_for(rows, 1), 64, 0, w.delta, dout, out, rows, Dh);
    for_each_slab(a, w, k, v, keep, [&](const slab &sl, const float *kg, const float *vg) {
        const int64_t row = sl.g0 * group + sl.r0;
        const product_batch rows_by_keys = {sl.n, group * Dh, S * Dh, sl.m * S};   /* (rows x Dh) (keys x Dh)^T */
        const product_batch keys_by_rows = {sl.n, sl.m * S, group * Dh, S * Dh};   /* P^T or dS^T times rows */
        const float beta = sl.r0 == 0 ? 0.0f : 1.0f;   /* dk and dv sum over a group's chunks */
        gemm_strided(0, 1, sl.m, S, Dh, a->scale, q + row * Dh, Dh, kg, Dh, 0.0f, w.p, S, rows_by_keys);
        gemm_strided(0, 1, sl.m, S, Dh, 1.0f, dout + row * Dh, Dh, vg, Dh, 0.0f, w.ds, S, rows_by_keys);
        EMPO_LAUNCH(score_grads, blocks_for(sl.n * sl.m * S, 256, 4096), 256, 0, w.p, w.ds, sl, lse + row,
                    w.delta + row, keep, *a);
        if (dv) gemm_strided(1, 0, S, Dh, sl.m, 1.0f, w.p, S, dout + row * Dh, Dh, beta, dv + sl.g0 * S * Dh, Dh,
                             keys_by_rows);
        if (dk) gemm_strided(1, 0, S, Dh, sl.m, 1.0f, w.ds, S, q + row * Dh, Dh, beta, dk + sl.g0 * S * Dh, Dh,
                             keys_by_rows);
        if (dq) gemm_strided(0, 0, sl.m, Dh, S, 1.0f, w.ds, S, kg, Dh, 0.0f, dq + row * Dh, Dh,
                             {sl.n, sl.m * S, S * Dh, group * Dh});
    });
}
EMPO_CUDA_END
