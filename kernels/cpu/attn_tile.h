/* attn_tile.h — pieces shared by the tiled attention kernels
 * (fused_attention.c for training and prefill, kv_attention.c for decode
 * steps): folding scores into an online softmax, one query at a time or
 * across the queries of a tile, and the row-by-row scoring and summing for
 * few queries (attn_rows.c). Internal to kernels/cpu; AVX2 + FMA. */
#ifndef EMPO_KERNELS_ATTN_TILE_H
#define EMPO_KERNELS_ATTN_TILE_H
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fused.h"

/* Max and sum of n floats (n a multiple of 8), the partial results in
 * registers: an omp simd reduction spills its lanes and keeps GCC from
 * vectorizing the loop around it. */
static inline float empo_max8n(const float *x, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

static inline float empo_sum8n(const float *x, int64_t n) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; j += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + j));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* Folds one query's raw scores p[0, np) (np a multiple of 8; the query
 * sees keys j < vis, minus those with bias[j] = -inf when bias is given)
 * into its online softmax: running max *m, sum *l, output row o [Dh]
 * (scaled when the max grows). Leaves exp(scale p_j - max) in p, 0 where
 * hidden; the caller then adds p times the value rows to o. */
static inline void empo_softmax_fold(float *p, int64_t np, int64_t vis, const float *bias, float scale, float *m,
                                     float *l, float *o, int64_t Dh) {
    if (bias) {
#pragma omp simd
        for (int64_t j = 0; j < np; j++) p[j] = j < vis ? scale * p[j] + bias[j] : -INFINITY;
    } else {
#pragma omp simd
        for (int64_t j = 0; j < np; j++) p[j] = j < vis ? scale * p[j] : -INFINITY;
    }
    const float bm = empo_max8n(p, np);
    if (bm == -INFINITY) {   /* nothing visible */
        memset(p, 0, sizeof(float) * (size_t)np);
        return;
    }
    if (bm > *m) {   /* re-express the partial sums against the new max */
        const float c = empo_k_expf(*m - bm);
        *l *= c;
#pragma omp simd
        for (int64_t d = 0; d < Dh; d++) o[d] *= c;
        *m = bm;
    }
    const float mx = *m;
#pragma omp simd
    for (int64_t j = 0; j < np; j++) p[j] = empo_k_expf(p[j] - mx);   /* -inf -> 0 */
    *l += empo_sum8n(p, np);
}

/* sc[i, s] = scale * q[i] . K[s] for the nq query rows q[i] and the n key
 * rows of K [n, Dh] (row stride of sc: ld >= n). Eight key rows at a
 * time, loaded once for all the queries, eight partial sums in registers
 * per query reduced together (kernels/cpu/attn_rows.c). */
void empo_attn_scores(float *sc, int64_t ld, const float *const *q, int64_t nq, const float *K, int64_t n,
                      int64_t Dh, float scale);
/* y [Dh] += sum_s c[s] V[s] over the n value rows: 32 columns of y in
 * registers while the rows stream by, even and odd rows in separate sums
 * so that eight FMA chains overlap their latency. */
void empo_attn_add_rows(float *y, const float *c, const float *V, int64_t n, int64_t Dh);

/* Widest query tile empo_softmax_fold_cols takes. */
enum { EMPO_FOLD_MAX_W = 64 };

/* The online softmax of a block of n keys for the w (<= EMPO_FOLD_MAX_W)
 * queries held in the columns of St [n, w]: scaled scores, -inf where a
 * key is hidden from a query. Updates each query's running max m[i] and
 * sum l[i], scales the rows of O [nq, Dh] (the first nq queries' outputs)
 * when their max grows, and leaves exp(score - max) in St (0 where
 * hidden); the caller then adds St^T V to O. The max and exp run across
 * the queries in vector lanes. */
static inline void empo_softmax_fold_cols(float *St, int64_t n, int64_t w, float *m, float *l, float *O, int64_t nq,
                                          int64_t Dh) {
    float bm[EMPO_FOLD_MAX_W], cf[EMPO_FOLD_MAX_W];
    for (int64_t i = 0; i < w; i++) bm[i] = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        const float *x = St + j * w;
#pragma omp simd
        for (int64_t i = 0; i < w; i++) bm[i] = x[i] > bm[i] ? x[i] : bm[i];
    }
#pragma omp simd
    for (int64_t i = 0; i < w; i++) {   /* re-express the partial sums against the new max */
        const float mn = bm[i] > m[i] ? bm[i] : m[i];
        cf[i] = mn == -INFINITY ? 1.0f : empo_k_expf(m[i] - mn);
        l[i] *= cf[i];
        m[i] = mn;
    }
    for (int64_t i = 0; i < nq; i++)
        if (cf[i] != 1.0f) {
            float *o = O + i * Dh;
#pragma omp simd
            for (int64_t d = 0; d < Dh; d++) o[d] *= cf[i];
        }
    for (int64_t j = 0; j < n; j++) {
        float *x = St + j * w;
#pragma omp simd
        for (int64_t i = 0; i < w; i++) {
            x[i] = x[i] == -INFINITY ? 0.0f : empo_k_expf(x[i] - m[i]);
            l[i] += x[i];
        }
    }
}

#endif
