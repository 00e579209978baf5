/* fused_attention.cu — causal grouped-query attention, forward and
 * backward, on the GPU (the semantics of kernels/fused.h).
 *
 * Tiled, so a key or query row read from memory serves a whole tile of
 * rows: the forward takes a tile of query rows of one head and walks the
 * keys a tile at a time (K, then V, staged in shared memory), keeping each
 * row's running max and sum; dq is the same walk from the saved lse; dk
 * and dv take a tile of keys of one KV head and walk the query tiles of
 * every head that reads it. Tile sizes follow the head dim (tiling_*), so
 * shared memory stays within the 48 KiB any launch may ask for and a
 * thread's accumulators within ACC registers. Every sum has a fixed order
 * and there are no atomics, so results are reproducible. A hidden key's
 * values are never read. f32 on the CUDA cores; the products around the
 * attention carry the bf16 tensor-core work. */
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/fused.h"

EMPO_CUDA_BEGIN
constexpr int THREADS = 128, WARPS = THREADS / 32;
constexpr int ACC = 16;   /* accumulators per thread: a tile's rows x Dh <= THREADS * ACC */
static_assert(THREADS * ACC == EMPO_ATTENTION_MAX_HEAD_DIM, "a one-row tile holds the largest head dim");
constexpr size_t SHARED_BYTES = 48 * 1024;

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
/* n rows of Dh floats from src into shared memory, `stride` floats apart
 * (Dh + 1 for rows that threads read across: no two lanes on one bank) */
__device__ __forceinline__ void load_rows(float *dst, int64_t stride, const float *src, int64_t n, int64_t Dh) {
    for (int64_t e = threadIdx.x; e < n * Dh; e += blockDim.x) dst[(e / Dh) * stride + e % Dh] = src[e];
}

/* ---- forward: a block per tile of `bq` query rows of one (b, h) ----
 * shared: each row's running sum (double) and max, its rescale for this key
 * tile, the tile's queries, the key tile (K, then V, rows Dh + 1 apart) and
 * the scores, turned into weights in place. */
struct tiling {
    int bq, bk;
    size_t shared;
};
static tiling tiling_forward(int64_t Dh) {
    tiling t;
    t.bq = (int)(THREADS * ACC / Dh < 32 ? THREADS * ACC / Dh : 32);
    const size_t fixed = (size_t)t.bq * (sizeof(double) + 2 * sizeof(float) + Dh * sizeof(float));
    const int64_t fit = (int64_t)((SHARED_BYTES - fixed) / (sizeof(float) * (Dh + 1 + t.bq)));
    t.bk = (int)(fit < 64 ? fit : 64);
    t.shared = fixed + sizeof(float) * (size_t)t.bk * (Dh + 1 + t.bq);
    return t;
}

__global__ void __launch_bounds__(THREADS) attention_forward_tiles(float *out, float *lse, const float *q,
                                                                 const float *k, const float *v, const float *keep,
                                                                 empo_attn_shape a, int bq, int bk) {
    const int64_t Dh = a.Dh, rep = a.Hq / a.Hkv, qtiles = (a.T + bq - 1) / bq, tiles = a.B * a.Hq * qtiles;
    EMPO_DYNAMIC_SHARED(double, row_sum);
    float *row_max = reinterpret_cast<float *>(row_sum + bq), *row_scale = row_max + bq, *qs = row_scale + bq;
    float *kv = qs + bq * Dh, *w = kv + bk * (Dh + 1);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int64_t bh = tile / qtiles, t0 = tile % qtiles * bq, h = bh % a.Hq, b = bh / a.Hq;
        const int nq = (int)(a.T - t0 < bq ? a.T - t0 : bq);
        const int64_t r0 = bh * a.T + t0;   /* the tile's first row of q, out and lse */
        const float *kh = k + (b * a.Hkv + h / rep) * a.S * Dh, *vh = v + (b * a.Hkv + h / rep) * a.S * Dh;
        __syncthreads();   /* the last tile's reads of shared memory are done */
        load_rows(qs, Dh, q + r0 * Dh, nq, Dh);
        for (int i = threadIdx.x; i < bq; i += THREADS) row_sum[i] = 0.0, row_max[i] = -INFINITY;
        float acc[ACC] = {0};
        const int64_t end = keys_end(a, t0 + nq - 1);   /* the tile's last row sees the most */
        for (int64_t s0 = 0; s0 < end; s0 += bk) {
            const int nk = (int)(end - s0 < bk ? end - s0 : bk);
            __syncthreads();   /* the queries are in; the last key tile's V is read */
            load_rows(kv, Dh + 1, kh + s0 * Dh, nk, Dh);
            __syncthreads();
            for (int e = threadIdx.x; e < nq * bk; e += THREADS) {
                const int i = e / bk, j = e % bk;
                w[e] = j < nk && key_visible(a, keep, b, t0 + i, s0 + j)
                           ? dot(qs + i * Dh, kv + j * (Dh + 1), Dh) * a.scale
                           : -INFINITY;
            }
            __syncthreads();
            /* a warp per row: the running max and sum brought up to this
             * tile, its scores turned into weights exp(score - max) */
            for (int i = warp; i < nq; i += WARPS) {
                float *wi = w + i * bk;
                float tile_max = -INFINITY;
                for (int j = lane; j < nk; j += 32) tile_max = wi[j] > tile_max ? wi[j] : tile_max;
                tile_max = warp_reduce(tile_max, max_op());
                const float m = row_max[i], m_new = m > tile_max ? m : tile_max;
                double s = 0.0;
                for (int j = lane; j < nk; j += 32) {
                    const float p = m_new == -INFINITY || wi[j] == -INFINITY ? 0.0f : expf(wi[j] - m_new);
                    wi[j] = p;
                    s += p;
                }
                s = warp_reduce(s, sum_op());
                if (lane == 0) {
                    const float scale = m == -INFINITY ? (m_new == -INFINITY ? 1.0f : 0.0f) : expf(m - m_new);
                    row_sum[i] = row_sum[i] * scale + s;
                    row_max[i] = m_new;
                    row_scale[i] = scale;
                }
            }
            load_rows(kv, Dh + 1, vh + s0 * Dh, nk, Dh);   /* (K was read before the last barrier) */
            __syncthreads();   /* V and the weights are in */
            EMPO_UNROLL
            for (int c = 0; c < ACC; c++) {   /* a thread's outputs: (i, d) = e = threadIdx.x + c THREADS */
                const int64_t e = threadIdx.x + (int64_t)c * THREADS;
                if (e >= nq * Dh) break;
                const int64_t i = e / Dh, d = e % Dh;
                const float *wi = w + i * bk;
                float o = acc[c] * row_scale[i];
                for (int j = 0; j < nk; j++)
                    if (wi[j] != 0.0f) o += wi[j] * kv[j * (Dh + 1) + d];
                acc[c] = o;
            }
        }
        __syncthreads();   /* (a tile that saw no keys wrote its stats after the last barrier) */
        EMPO_UNROLL
        for (int c = 0; c < ACC; c++) {
            const int64_t e = threadIdx.x + (int64_t)c * THREADS;
            if (e >= nq * Dh) break;
            const int64_t i = e / Dh;
            out[r0 * Dh + e] = row_max[i] == -INFINITY ? 0.0f : (float)(acc[c] / row_sum[i]);
        }
        for (int i = threadIdx.x; i < nq; i += THREADS)
            lse[r0 + i] = row_max[i] == -INFINITY ? -INFINITY : (float)(row_max[i] + log(row_sum[i]));
    }
}

int64_t attention_work(const empo_attn_shape *a) { return a->B * a->Hq * a->T; }   /* delta per query row */

void attention_forward(float *out, float *lse, float *work, const float *q, const float *k, const float *v,
                       const float *keep, const empo_attn_shape *a) {
    if (a->B * a->Hq * a->T <= 0 || a->Dh <= 0) return;
    const tiling t = tiling_forward(a->Dh);
    const int64_t tiles = a->B * a->Hq * ((a->T + t.bq - 1) / t.bq);
    EMPO_LAUNCH(attention_forward_tiles, blocks_for(tiles, 1), THREADS, t.shared, out, lse, q, k, v, keep, *a, t.bq,
                t.bk);
}

/* ---- backward ----
 * With P = exp(scale q.k - lse) and delta = rowsum(dout * out):
 * dS = P (dout.v - delta) scale, dq = dS k, dk = dS^T q, dv = P^T dout. */

/* delta[r] = dout[r] . out[r] = sum over keys of p dp (the softmax's backward term) */
__global__ void attention_delta_rows(float *delta, const float *dout, const float *out, int64_t rows, int64_t Dh) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        double acc = 0;
        for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) acc += (double)dout[r * Dh + d] * out[r * Dh + d];
        acc = block_reduce(acc, sum_op());
        if (threadIdx.x == 0) delta[r] = (float)acc;
    }
}

/* dq: a block per tile of bq query rows, as the forward; the key tile is
 * staged twice (V for dout.v, then K for p and for dq += dS k), dS kept
 * in shared memory */
static tiling tiling_dq(int64_t Dh) {
    tiling t;
    t.bq = (int)(THREADS * ACC / Dh < 32 ? THREADS * ACC / Dh : 32);
    const size_t fixed = (size_t)t.bq * sizeof(float) * (2 + 2 * Dh);
    const int64_t fit = (int64_t)((SHARED_BYTES - fixed) / (sizeof(float) * (Dh + 1 + t.bq)));
    t.bk = (int)(fit < 64 ? fit : 64);
    t.shared = fixed + sizeof(float) * (size_t)t.bk * (Dh + 1 + t.bq);
    return t;
}

__global__ void __launch_bounds__(THREADS) attention_dq_tiles(float *dq, const float *dout, const float *q,
                                                            const float *k, const float *v, const float *keep,
                                                            const float *lse, const float *delta, empo_attn_shape a,
                                                            int bq, int bk) {
    const int64_t Dh = a.Dh, rep = a.Hq / a.Hkv, qtiles = (a.T + bq - 1) / bq, tiles = a.B * a.Hq * qtiles;
    EMPO_DYNAMIC_SHARED(float, row_lse);
    float *row_delta = row_lse + bq, *qs = row_delta + bq, *gs = qs + bq * Dh, *kv = gs + bq * Dh;
    float *ds = kv + bk * (Dh + 1);
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int64_t bh = tile / qtiles, t0 = tile % qtiles * bq, h = bh % a.Hq, b = bh / a.Hq;
        const int nq = (int)(a.T - t0 < bq ? a.T - t0 : bq);
        const int64_t r0 = bh * a.T + t0;
        const float *kh = k + (b * a.Hkv + h / rep) * a.S * Dh, *vh = v + (b * a.Hkv + h / rep) * a.S * Dh;
        __syncthreads();
        load_rows(qs, Dh, q + r0 * Dh, nq, Dh);
        load_rows(gs, Dh, dout + r0 * Dh, nq, Dh);
        for (int i = threadIdx.x; i < nq; i += THREADS) row_lse[i] = lse[r0 + i], row_delta[i] = delta[r0 + i];
        float acc[ACC] = {0};
        const int64_t end = keys_end(a, t0 + nq - 1);
        for (int64_t s0 = 0; s0 < end; s0 += bk) {
            const int nk = (int)(end - s0 < bk ? end - s0 : bk);
            __syncthreads();   /* the rows are in; the last tile's K is read */
            load_rows(kv, Dh + 1, vh + s0 * Dh, nk, Dh);
            __syncthreads();
            for (int e = threadIdx.x; e < nq * bk; e += THREADS) {   /* dout.v - delta, where visible */
                const int i = e / bk, j = e % bk;
                const bool seen = j < nk && row_lse[i] != -INFINITY && key_visible(a, keep, b, t0 + i, s0 + j);
                ds[e] = seen ? dot(gs + i * Dh, kv + j * (Dh + 1), Dh) - row_delta[i] : 0.0f;
            }
            __syncthreads();   /* V is read */
            load_rows(kv, Dh + 1, kh + s0 * Dh, nk, Dh);
            __syncthreads();
            for (int e = threadIdx.x; e < nq * bk; e += THREADS) {   /* the same e as above: this thread's own ds */
                const int i = e / bk, j = e % bk;
                const bool seen = j < nk && row_lse[i] != -INFINITY && key_visible(a, keep, b, t0 + i, s0 + j);
                const float p = seen ? expf(dot(qs + i * Dh, kv + j * (Dh + 1), Dh) * a.scale - row_lse[i]) : 0.0f;
                ds[e] = p * ds[e] * a.scale;
            }
            __syncthreads();
            EMPO_UNROLL
            for (int c = 0; c < ACC; c++) {
                const int64_t e = threadIdx.x + (int64_t)c * THREADS;
                if (e >= nq * Dh) break;
                const int64_t i = e / Dh, d = e % Dh;
                const float *dsi = ds + i * bk;
                float g = acc[c];
                for (int j = 0; j < nk; j++)
                    if (dsi[j] != 0.0f) g += dsi[j] * kv[j * (Dh + 1) + d];
                acc[c] = g;
            }
        }
        EMPO_UNROLL
        for (int c = 0; c < ACC; c++) {
            const int64_t e = threadIdx.x + (int64_t)c * THREADS;
            if (e >= nq * Dh) break;
            dq[r0 * Dh + e] = acc[c];
        }
    }
}

/* dk, dv: a block per tile of bk keys of one (b, KV head), walking the
 * query tiles of the rep heads that read it; P and dS of a query tile in
 * shared memory */
static tiling tiling_dkv(int64_t Dh) {
    tiling t;
    t.bk = (int)(THREADS * ACC / Dh < 16 ? THREADS * ACC / Dh : 16);
    const size_t fixed = (size_t)t.bk * sizeof(float) * 2 * (Dh + 1);
    const int64_t fit = (int64_t)((SHARED_BYTES - fixed) / (sizeof(float) * 2 * (1 + Dh + t.bk)));
    t.bq = (int)(fit < 32 ? fit : 32);
    t.shared = fixed + sizeof(float) * 2 * (size_t)t.bq * (1 + Dh + t.bk);
    return t;
}

__global__ void __launch_bounds__(THREADS) attention_dkv_tiles(float *dk, float *dv, const float *dout,
                                                             const float *q, const float *k, const float *v,
                                                             const float *keep, const float *lse, const float *delta,
                                                             empo_attn_shape a, int bq, int bk) {
    const int64_t Dh = a.Dh, rep = a.Hq / a.Hkv, ktiles = (a.S + bk - 1) / bk, tiles = a.B * a.Hkv * ktiles;
    EMPO_DYNAMIC_SHARED(float, ks);
    float *vs = ks + bk * (Dh + 1), *qs = vs + bk * (Dh + 1), *gs = qs + bq * Dh, *row_lse = gs + bq * Dh;
    float *row_delta = row_lse + bq, *ps = row_delta + bq, *ds = ps + bq * bk;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const int64_t bkv = tile / ktiles, s0 = tile % ktiles * bk, kvh = bkv % a.Hkv, b = bkv / a.Hkv;
        const int nk = (int)(a.S - s0 < bk ? a.S - s0 : bk);
        const int64_t k0 = bkv * a.S + s0;   /* the tile's first row of k, v, dk and dv */
        __syncthreads();
        load_rows(ks, Dh + 1, k + k0 * Dh, nk, Dh);
        load_rows(vs, Dh + 1, v + k0 * Dh, nk, Dh);
        float gk[ACC] = {0}, gv[ACC] = {0};
        /* the first query that sees the tile's first key */
        const int64_t first = a.causal ? (s0 - (a.S - a.T) > 0 ? s0 - (a.S - a.T) : 0) : 0;
        for (int64_t h = kvh * rep; h < (kvh + 1) * rep; h++) {
            const int64_t row0 = (b * a.Hq + h) * a.T;
            for (int64_t t0 = first; t0 < a.T; t0 += bq) {
                const int nq = (int)(a.T - t0 < bq ? a.T - t0 : bq);
                __syncthreads();   /* the keys are in; the last query tile is read */
                load_rows(qs, Dh, q + (row0 + t0) * Dh, nq, Dh);
                load_rows(gs, Dh, dout + (row0 + t0) * Dh, nq, Dh);
                for (int i = threadIdx.x; i < nq; i += THREADS)
                    row_lse[i] = lse[row0 + t0 + i], row_delta[i] = delta[row0 + t0 + i];
                __syncthreads();
                for (int e = threadIdx.x; e < nq * bk; e += THREADS) {
                    const int i = e / bk, j = e % bk;
                    float p = 0.0f, dsij = 0.0f;
                    if (j < nk && row_lse[i] != -INFINITY && key_visible(a, keep, b, t0 + i, s0 + j)) {
                        p = expf(dot(qs + i * Dh, ks + j * (Dh + 1), Dh) * a.scale - row_lse[i]);
                        dsij = p * (dot(gs + i * Dh, vs + j * (Dh + 1), Dh) - row_delta[i]) * a.scale;
                    }
                    ps[e] = p;
                    ds[e] = dsij;
                }
                __syncthreads();
                EMPO_UNROLL
                for (int c = 0; c < ACC; c++) {   /* a thread's outputs: (j, d) = e */
                    const int64_t e = threadIdx.x + (int64_t)c * THREADS;
                    if (e >= nk * Dh) break;
                    const int64_t j = e / Dh, d = e % Dh;
                    float sk = gk[c], sv = gv[c];
                    for (int i = 0; i < nq; i++) {
                        if (ds[i * bk + j] != 0.0f) sk += ds[i * bk + j] * qs[i * Dh + d];
                        if (ps[i * bk + j] != 0.0f) sv += ps[i * bk + j] * gs[i * Dh + d];
                    }
                    gk[c] = sk, gv[c] = sv;
                }
            }
        }
        EMPO_UNROLL
        for (int c = 0; c < ACC; c++) {
            const int64_t e = threadIdx.x + (int64_t)c * THREADS;
            if (e >= nk * Dh) break;
            if (dk) dk[k0 * Dh + e] = gk[c];
            if (dv) dv[k0 * Dh + e] = gv[c];
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *work, const float *dout, const float *q,
                        const float *k, const float *v, const float *out, const float *keep, const float *lse,
                        const empo_attn_shape *a) {
    const int64_t qrows = a->B * a->Hq * a->T;
    if (qrows <= 0 || a->Dh <= 0) return;
    EMPO_LAUNCH(attention_delta_rows, blocks_for(qrows, 1), 64, 0, work, dout, out, qrows, a->Dh);
    if (dq) {
        const tiling t = tiling_dq(a->Dh);
        const int64_t tiles = a->B * a->Hq * ((a->T + t.bq - 1) / t.bq);
        EMPO_LAUNCH(attention_dq_tiles, blocks_for(tiles, 1), THREADS, t.shared, dq, dout, q, k, v, keep, lse, work,
                    *a, t.bq, t.bk);
    }
    if ((dk || dv) && a->B * a->Hkv * a->S > 0) {
        const tiling t = tiling_dkv(a->Dh);
        const int64_t tiles = a->B * a->Hkv * ((a->S + t.bk - 1) / t.bk);
        EMPO_LAUNCH(attention_dkv_tiles, blocks_for(tiles, 1), THREADS, t.shared, dk, dv, dout, q, k, v, keep, lse,
                    work, *a, t.bq, t.bk);
    }
}
EMPO_CUDA_END
