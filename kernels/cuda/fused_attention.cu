/* fused_attention.cu — causal grouped-query attention, forward and
 * backward, on the GPU (the semantics of kernels/fused.h), through the
 * table's matrix products (cuBLASLt: the tensor cores when TF32 is
 * allowed) and three small kernels of its own.
 *
 * The rep query heads that read one KV head are consecutive in q, so a KV
 * group's queries are one (rep T, Dh) matrix, contiguous in q, out, lse
 * and dq: its scores are one product with K^T. A chunk of the group's rows
 * is scored at a time (at most SCORE_FLOATS scores), so memory stays
 * bounded at any length:
 *   forward   P = scale Q K^T; a softmax over the keys each row sees, its
 *             lse kept; out = P V
 *   backward  P again from the lse; dS = P (dout V^T - delta) scale, with
 *             delta = rowsum(dout * out); dq = dS K; dk += dS^T Q;
 *             dv += P^T dout
 * The products see every key; the kernels give hidden and future keys a
 * zero probability, and with a keep mask the group's K and V are first
 * copied with hidden rows zeroed, so what a hidden key holds (NaN, say)
 * never reaches a product. No atomics, a fixed order for every sum:
 * results are reproducible. */
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/fused.h"
#include "kernels/gemm.h"

EMPO_CUDA_BEGIN
empo_gemm_fn gemm;

/* scores formed at once, per buffer (32 MiB); the emulation forms smaller
 * chunks, so that its tests cross chunk borders at their small shapes */
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

/* a group's K or V with the rows batch row b hides zeroed */
__global__ void hide_keys(float *dst, const float *src, const float *keep, int64_t b, int64_t S, int64_t Dh) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < S * Dh; e += (int64_t)gridDim.x * blockDim.x)
        dst[e] = keep[b * S + e / Dh] != 0.0f ? src[e] : 0.0f;
}

/* rows of scaled scores (row r is the group's row first + r, query
 * t = (first + r) % T) -> probabilities over the keys each sees, in place,
 * and each row's log-sum-exp; a row that sees no key gets zeros and -inf */
__global__ void softmax_rows(float *p, float *lse, int64_t rows, int64_t first, const float *keep, int64_t b,
                             empo_attn_shape a) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t t = (first + r) % a.T;
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

/* scaled scores and dout.v of rows as above -> P from the saved lse, and
 * dS = P (dout.v - delta) scale; zero where a row does not see the key */
__global__ void score_grads(float *p, float *ds, int64_t rows, int64_t first, const float *lse, const float *delta,
                            const float *keep, int64_t b, empo_attn_shape a) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < rows * a.S;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / a.S, s = e % a.S;
        const bool seen = lse[r] != -INFINITY && key_visible(a, keep, b, (first + r) % a.T, s);
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

/* ---- the host side: a KV group at a time, a chunk of its rows at a time ---- */
static int64_t chunk_rows(const empo_attn_shape *a) {
    const int64_t group = a->Hq / a->Hkv * a->T, fit = SCORE_FLOATS / (a->S > 0 ? a->S : 1);
    return fit < 1 ? 1 : (fit < group ? fit : group);
}

/* work: delta per query row, then the chunk's scores (P) and their
 * gradients (dS), then a group's K and V with hidden rows zeroed */
int64_t attention_work(const empo_attn_shape *a) {
    return a->B * a->Hq * a->T + 2 * chunk_rows(a) * a->S + 2 * a->S * a->Dh;
}
struct work_parts {
    float *delta, *p, *ds, *k, *v;
};
static work_parts carve(float *work, const empo_attn_shape *a) {
    work_parts w;
    w.delta = work;
    w.p = w.delta + a->B * a->Hq * a->T;
    w.ds = w.p + chunk_rows(a) * a->S;
    w.k = w.ds + chunk_rows(a) * a->S;
    w.v = w.k + a->S * a->Dh;
    return w;
}
/* group g's K and V as the products read them: hidden rows zeroed when keep */
static void group_keys(const float **kg, const float **vg, const work_parts &w, const float *k, const float *v,
                       const float *keep, int64_t g, const empo_attn_shape *a) {
    *kg = k + g * a->S * a->Dh;
    *vg = v + g * a->S * a->Dh;
    if (!keep || a->S == 0) return;
    const int64_t b = g / a->Hkv;
    EMPO_LAUNCH(hide_keys, blocks_for(a->S * a->Dh, 256, 4096), 256, 0, w.k, *kg, keep, b, a->S, a->Dh);
    EMPO_LAUNCH(hide_keys, blocks_for(a->S * a->Dh, 256, 4096), 256, 0, w.v, *vg, keep, b, a->S, a->Dh);
    *kg = w.k, *vg = w.v;
}

void attention_forward(float *out, float *lse, float *work, const float *q, const float *k, const float *v,
                       const float *keep, const empo_attn_shape *a) {
    if (a->B * a->Hq * a->T <= 0 || a->Dh <= 0) return;
    const int64_t S = a->S, Dh = a->Dh, group = a->Hq / a->Hkv * a->T, chunk = chunk_rows(a);
    const work_parts w = carve(work, a);
    for (int64_t g = 0; g < a->B * a->Hkv; g++) {
        const float *kg, *vg;
        group_keys(&kg, &vg, w, k, v, keep, g, a);
        for (int64_t r0 = 0; r0 < group; r0 += chunk) {
            const int64_t m = group - r0 < chunk ? group - r0 : chunk, row = g * group + r0;
            gemm(0, 1, m, S, Dh, a->scale, q + row * Dh, Dh, kg, Dh, 0.0f, w.p, S);
            EMPO_LAUNCH(softmax_rows, blocks_for(m, 1), 128, 0, w.p, lse + row, m, r0, keep, g / a->Hkv, *a);
            gemm(0, 0, m, Dh, S, 1.0f, w.p, S, vg, Dh, 0.0f, out + row * Dh, Dh);
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *work, const float *dout, const float *q,
                        const float *k, const float *v, const float *out, const float *keep, const float *lse,
                        const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T;
    if (rows <= 0 || a->Dh <= 0) return;
    const int64_t S = a->S, Dh = a->Dh, group = a->Hq / a->Hkv * a->T, chunk = chunk_rows(a);
    const work_parts w = carve(work, a);
    EMPO_LAUNCH(attention_delta_rows, blocks_for(rows, 1), 64, 0, w.delta, dout, out, rows, Dh);
    for (int64_t g = 0; g < a->B * a->Hkv; g++) {
        const float *kg, *vg;
        group_keys(&kg, &vg, w, k, v, keep, g, a);
        float *dkg = dk ? dk + g * S * Dh : nullptr, *dvg = dv ? dv + g * S * Dh : nullptr;
        for (int64_t r0 = 0; r0 < group; r0 += chunk) {
            const int64_t m = group - r0 < chunk ? group - r0 : chunk, row = g * group + r0;
            const float beta = r0 == 0 ? 0.0f : 1.0f;   /* dk and dv sum over the chunks */
            gemm(0, 1, m, S, Dh, a->scale, q + row * Dh, Dh, kg, Dh, 0.0f, w.p, S);
            gemm(0, 1, m, S, Dh, 1.0f, dout + row * Dh, Dh, vg, Dh, 0.0f, w.ds, S);
            EMPO_LAUNCH(score_grads, blocks_for(m * S, 256, 4096), 256, 0, w.p, w.ds, m, r0, lse + row,
                        w.delta + row, keep, g / a->Hkv, *a);
            if (dvg) gemm(1, 0, S, Dh, m, 1.0f, w.p, S, dout + row * Dh, Dh, beta, dvg, Dh);
            if (dkg) gemm(1, 0, S, Dh, m, 1.0f, w.ds, S, q + row * Dh, Dh, beta, dkg, Dh);
            if (dq) gemm(0, 0, m, Dh, S, 1.0f, w.ds, S, kg, Dh, 0.0f, dq + row * Dh, Dh);
        }
    }
}
EMPO_CUDA_END
