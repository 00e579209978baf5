/* kv_attention.c — the fast kernel of a decode step's attention over a KV
 * cache whose rows have their own lengths (kernels/sample.h): one task per
 * (row, KV head), whose query heads share every key and value row they
 * read; blocks of keys scored eight at a time with the partial sums in
 * registers (AVX2 + FMA, the library's baseline ISA), folded into an online softmax, their value rows summed with
 * 32 output columns in registers. Positions past the row's length are
 * never read. Stack buffers only: the kernel cannot fail. The naive version is in kernels/ref/kv_attention.c. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf. */
#pragma GCC optimize("no-trapping-math")
#include <immintrin.h>
#include <string.h>
#include "internal.h"
#include "fused.h"
#include "sample.h"

/* 8 floats in one AVX register (a GCC/Clang vector extension); memcpy makes
 * the loads and stores alignment-free. */
typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

static inline float hsum8(v8f v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

static float dot(const float *a, const float *b, int64_t n) {
    v8f acc = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc += load8(a + i) * load8(b + i);
    float s = hsum8(acc);
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

/* sc[j, s] = scale * q[j] . K[s] for the g queries and the L keys (sc is
 * [g, L]). Eight key rows at a time, loaded once for all g queries: eight
 * partial sums in registers per query, reduced together. */
static void scores(float *sc, const float *q, const float *K, int64_t g, int64_t L, int64_t Dh, float scale) {
    int64_t s = 0;
    if (Dh % 8 == 0) {
        const __m256 vs = _mm256_set1_ps(scale);
        for (; s + 8 <= L; s += 8) {
            const float *r = K + s * Dh;
            for (int64_t j = 0; j < g; j++) {
                const float *x = q + j * Dh;
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
                _mm256_storeu_ps(sc + j * L + s, _mm256_mul_ps(vs, sums8(a0, a1, a2, a3, a4, a5, a6, a7)));
            }
        }
    }
    for (; s < L; s++)
        for (int64_t j = 0; j < g; j++) sc[j * L + s] = scale * dot(q + j * Dh, K + s * Dh, Dh);
}

enum {
    KEY_BLOCK = 64,   /* keys scored at once (stack buffer) */
    HEAD_BLOCK = 16   /* query heads of one KV head processed together */
};

/* y += sum_s c[s] V[s] over the n value rows, 32 columns of y in registers
 * while the rows stream by; even and odd rows go to separate sums, so
 * that eight FMA chains overlap their latency */
static void add_weighted_rows(float *y, const float *c, const float *V, int64_t n, int64_t Dh) {
    int64_t d = 0;
    for (; d + 32 <= Dh; d += 32) {
        v8f a0 = load8(y + d), a1 = load8(y + d + 8), a2 = load8(y + d + 16), a3 = load8(y + d + 24);
        v8f b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
        int64_t s = 0;
        for (; s + 2 <= n; s += 2) {
            const float *r = V + s * Dh + d, *r1 = r + Dh;
            a0 += c[s] * load8(r);
            a1 += c[s] * load8(r + 8);
            a2 += c[s] * load8(r + 16);
            a3 += c[s] * load8(r + 24);
            b0 += c[s + 1] * load8(r1);
            b1 += c[s + 1] * load8(r1 + 8);
            b2 += c[s + 1] * load8(r1 + 16);
            b3 += c[s + 1] * load8(r1 + 24);
        }
        if (s < n) {
            const float *r = V + s * Dh + d;
            a0 += c[s] * load8(r);
            a1 += c[s] * load8(r + 8);
            a2 += c[s] * load8(r + 16);
            a3 += c[s] * load8(r + 24);
        }
        store8(y + d, a0 + b0), store8(y + d + 8, a1 + b1), store8(y + d + 16, a2 + b2), store8(y + d + 24, a3 + b3);
    }
    for (; d + 8 <= Dh; d += 8) {
        v8f a = load8(y + d);
        for (int64_t s = 0; s < n; s++) a += c[s] * load8(V + s * Dh + d);
        store8(y + d, a);
    }
    for (; d < Dh; d++)
        for (int64_t s = 0; s < n; s++) y[d] += c[s] * V[s * Dh + d];
}

static void scale_row(float *y, float c, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] *= c;
}

/* g <= HEAD_BLOCK query heads (rows of q and out, Dh each) over the L keys
 * and values of one KV head: blocks of KEY_BLOCK keys folded into an online
 * softmax (running max m and sum l per head). */
static void attend_heads(float *out, const float *q, const float *K, const float *V, int64_t g, int64_t L,
                         int64_t Dh, float scale) {
    float sc[HEAD_BLOCK * KEY_BLOCK], m[HEAD_BLOCK], l[HEAD_BLOCK];
    for (int64_t h = 0; h < g; h++) m[h] = -INFINITY, l[h] = 0.0f;
    memset(out, 0, sizeof(float) * (size_t)(g * Dh));
    for (int64_t s0 = 0; s0 < L; s0 += KEY_BLOCK) {
        const int64_t n = L - s0 < KEY_BLOCK ? L - s0 : KEY_BLOCK;
        scores(sc, q, K + s0 * Dh, g, n, Dh, scale);
        for (int64_t h = 0; h < g; h++) {
            float *p = sc + h * n, bm = p[0];
            for (int64_t i = 1; i < n; i++) bm = p[i] > bm ? p[i] : bm;
            if (bm > m[h]) {   /* re-express what was summed against the new max */
                const float c = empo_k_expf(m[h] - bm);
                l[h] *= c;
                scale_row(out + h * Dh, c, Dh);
                m[h] = bm;
            }
            float z = 0.0f;
            const float mh = m[h];
#pragma omp simd reduction(+ : z)
            for (int64_t i = 0; i < n; i++) {
                p[i] = empo_k_expf(p[i] - mh);
                z += p[i];
            }
            l[h] += z;
            add_weighted_rows(out + h * Dh, p, V + s0 * Dh, n, Dh);
        }
    }
    for (int64_t h = 0; h < g; h++) scale_row(out + h * Dh, 1.0f / l[h], Dh);
}

typedef struct {
    float *out;
    const float *q, *k, *v;
    const int64_t *len;
    int64_t Hq, Hkv, S, Dh;
    float scale;
} kv_job;

/* tasks lo..hi-1 = (row, KV head) pairs */
static void kv_tasks(void *ctx, int64_t lo, int64_t hi) {
    const kv_job *j = ctx;
    const int64_t g = j->Hq / j->Hkv, Dh = j->Dh;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t b = t / j->Hkv, L = j->len[b];
        const int64_t qrow = b * j->Hq + (t % j->Hkv) * g;   /* first of the g query heads */
        const float *K = j->k + t * j->S * Dh, *V = j->v + t * j->S * Dh;
        for (int64_t h0 = 0; h0 < g; h0 += HEAD_BLOCK) {
            const int64_t gh = g - h0 < HEAD_BLOCK ? g - h0 : HEAD_BLOCK;
            float *out = j->out + (qrow + h0) * Dh;
            if (L == 0) memset(out, 0, sizeof(float) * (size_t)(gh * Dh));   /* no visible key */
            else attend_heads(out, j->q + (qrow + h0) * Dh, K, V, gh, L, Dh, j->scale);
        }
    }
}

void empo_k_kv_attention(float *out, const float *q, const float *k, const float *v, const int64_t *len,
                         int64_t B, int64_t Hq, int64_t Hkv, int64_t S, int64_t Dh, float scale) {
    kv_job j = {out, q, k, v, len, Hq, Hkv, S, Dh, scale};
    int64_t keys = 0;
    for (int64_t b = 0; b < B; b++) keys += len[b];
    empo_parallel_for(B * Hkv, keys * Hq * Dh * 4, kv_tasks, &j);
}
