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
#include "kernels/fused.h"
#include "vec_math.h"

/* Folds one query's scaled scores p[0, np) (np a multiple of 8; the query
 * sees keys j < vis, minus those with bias[j] = -inf when bias is given)
 * into its online softmax: running max *m, sum *l, output row o [Dh]
 * (scaled when the max grows). Leaves exp(p_j - max) in p, 0 where
 * hidden; the caller then adds p times the value rows to o. Two passes,
 * the max and the sum kept in registers. */
static inline void empo_softmax_fold(float *p, int64_t np, int64_t vis, const float *bias, float *m, float *l,
                                     float *o, int64_t Dh) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 bmax = ninf;
    for (int64_t j = 0; j < np; j += 8) {
        __m256 v = _mm256_loadu_ps(p + j);
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
        const int64_t left = vis - j;   /* keys j + lane >= vis are hidden */
        const __m256i seen = _mm256_cmpgt_epi32(_mm256_set1_epi32(left < 0 ? 0 : left > 8 ? 8 : (int)left), lane);
        v = _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(seen));
        _mm256_storeu_ps(p + j, v);
        bmax = _mm256_max_ps(bmax, v);
    }
    const float bm = empo_hmax8(bmax);
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
    const __m256 mx = _mm256_set1_ps(*m);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < np; j += 8) {   /* -inf -> 0 */
        const __m256 e = empo_exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j), mx));
        _mm256_storeu_ps(p + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    *l += empo_hsum8(sum);
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

/* The online softmax of a block of n keys for the w (a multiple of 8,
 * <= EMPO_FOLD_MAX_W) queries held in the columns of St [n, w]: scaled
 * scores, -inf where a key is hidden from a query. Updates each query's
 * running max m[i] and sum l[i], scales the rows of O [nq, Dh] (the first
 * nq queries' outputs) when their max grows, and leaves exp(score - max)
 * in St (0 where hidden); the caller then adds St^T V to O. Eight queries
 * at a time in a vector, down the keys, the running max and sum in
 * registers. */
static inline void empo_softmax_fold_cols(float *St, int64_t n, int64_t w, float *m, float *l, float *O, int64_t nq,
                                          int64_t Dh) {
    float cf[EMPO_FOLD_MAX_W];
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t c = 0; c < w; c += 8) {
        __m256 b0 = ninf, b1 = ninf;   /* two chains: the max's latency overlaps */
        int64_t j = 0;
        for (; j + 1 < n; j += 2) {
            b0 = _mm256_max_ps(b0, _mm256_loadu_ps(St + j * w + c));
            b1 = _mm256_max_ps(b1, _mm256_loadu_ps(St + (j + 1) * w + c));
        }
        if (j < n) b0 = _mm256_max_ps(b0, _mm256_loadu_ps(St + j * w + c));
        const __m256 mo = _mm256_loadu_ps(m + c), mn = _mm256_max_ps(mo, _mm256_max_ps(b0, b1));
        /* re-express the partial sums against the new max (1 while nothing is visible) */
        const __m256 f = _mm256_blendv_ps(empo_exp8(_mm256_sub_ps(mo, mn)), _mm256_set1_ps(1.0f),
                                          _mm256_cmp_ps(mn, ninf, _CMP_EQ_OQ));
        _mm256_storeu_ps(cf + c, f);
        _mm256_storeu_ps(m + c, mn);
        __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(l + c), f), s1 = _mm256_setzero_ps();
        for (j = 0; j < n; j++) {
            float *x = St + j * w + c;
            const __m256 v = _mm256_loadu_ps(x);
            const __m256 e = _mm256_andnot_ps(_mm256_cmp_ps(v, ninf, _CMP_EQ_OQ), empo_exp8(_mm256_sub_ps(v, mn)));
            _mm256_storeu_ps(x, e);
            if (j & 1) s1 = _mm256_add_ps(s1, e);
            else s0 = _mm256_add_ps(s0, e);
        }
        _mm256_storeu_ps(l + c, _mm256_add_ps(s0, s1));
    }
    for (int64_t i = 0; i < nq; i++)
        if (cf[i] != 1.0f) {
            float *o = O + i * Dh;
#pragma omp simd
            for (int64_t d = 0; d < Dh; d++) o[d] *= cf[i];
        }
}

#endif
