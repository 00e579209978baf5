/* attn_rows.c — attention for a few query rows at a time (a decode step's
 * own positions, a forward tile with few queries), where packing a block
 * of keys for tile products would cost more than it saves: scores eight
 * keys at a time with the partial sums in registers, value rows summed
 * with 32 output columns in registers (declared in attn_tile.h). */
#include "attn_tile.h"

/* a . b over n floats */
static float dot(const float *a, const float *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    float s = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* The eight sums of a0..a7's lanes, as one vector (hadd tree). */
static inline __m256 sums8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                           __m256 a7) {
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

void empo_attn_scores(float *sc, int64_t ld, const float *const *q, int64_t nq, const float *K, int64_t n,
                      int64_t Dh, float scale) {
    int64_t s = 0;
    if (Dh % 8 == 0) {
        const __m256 vs = _mm256_set1_ps(scale);
        for (; s + 8 <= n; s += 8) {
            const float *r = K + s * Dh;
            for (int64_t i = 0; i < nq; i++) {
                const float *x = q[i];
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
                for (int64_t d = 0; d < Dh; d += 8) {
                    const __m256 xv = _mm256_loadu_ps(x + d);
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r + d), xv, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r + Dh + d), xv, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 2 * Dh + d), xv, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 3 * Dh + d), xv, a3);
                    a4 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 4 * Dh + d), xv, a4);
                    a5 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 5 * Dh + d), xv, a5);
                    a6 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 6 * Dh + d), xv, a6);
                    a7 = _mm256_fmadd_ps(_mm256_loadu_ps(r + 7 * Dh + d), xv, a7);
                }
                _mm256_storeu_ps(sc + i * ld + s, _mm256_mul_ps(vs, sums8(a0, a1, a2, a3, a4, a5, a6, a7)));
            }
        }
    }
    for (; s < n; s++)   /* the last keys, or any Dh */
        for (int64_t i = 0; i < nq; i++) sc[i * ld + s] = scale * dot(q[i], K + s * Dh, Dh);
}

void empo_attn_add_rows(float *y, const float *c, const float *V, int64_t n, int64_t Dh) {
    int64_t d = 0;
    for (; d + 32 <= Dh; d += 32) {
        __m256 a0 = _mm256_loadu_ps(y + d), a1 = _mm256_loadu_ps(y + d + 8), a2 = _mm256_loadu_ps(y + d + 16),
               a3 = _mm256_loadu_ps(y + d + 24);
        __m256 e0 = _mm256_setzero_ps(), e1 = e0, e2 = e0, e3 = e0;
        int64_t s = 0;
        for (; s + 2 <= n; s += 2) {
            const float *r = V + s * Dh + d, *r1 = r + Dh;
            const __m256 c0 = _mm256_set1_ps(c[s]), c1 = _mm256_set1_ps(c[s + 1]);
            a0 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r), a0);
            a1 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r + 8), a1);
            a2 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r + 16), a2);
            a3 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r + 24), a3);
            e0 = _mm256_fmadd_ps(c1, _mm256_loadu_ps(r1), e0);
            e1 = _mm256_fmadd_ps(c1, _mm256_loadu_ps(r1 + 8), e1);
            e2 = _mm256_fmadd_ps(c1, _mm256_loadu_ps(r1 + 16), e2);
            e3 = _mm256_fmadd_ps(c1, _mm256_loadu_ps(r1 + 24), e3);
        }
        if (s < n) {
            const float *r = V + s * Dh + d;
            const __m256 c0 = _mm256_set1_ps(c[s]);
            a0 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r), a0);
            a1 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r + 8), a1);
            a2 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r + 16), a2);
            a3 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(r + 24), a3);
        }
        _mm256_storeu_ps(y + d, _mm256_add_ps(a0, e0));
        _mm256_storeu_ps(y + d + 8, _mm256_add_ps(a1, e1));
        _mm256_storeu_ps(y + d + 16, _mm256_add_ps(a2, e2));
        _mm256_storeu_ps(y + d + 24, _mm256_add_ps(a3, e3));
    }
    for (; d + 8 <= Dh; d += 8) {
        __m256 a = _mm256_loadu_ps(y + d);
        for (int64_t s = 0; s < n; s++) a = _mm256_fmadd_ps(_mm256_set1_ps(c[s]), _mm256_loadu_ps(V + s * Dh + d), a);
        _mm256_storeu_ps(y + d, a);
    }
    for (; d < Dh; d++)
        for (int64_t s = 0; s < n; s++) y[d] += c[s] * V[s * Dh + d];
}
