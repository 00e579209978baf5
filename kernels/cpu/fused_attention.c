/* fused_attention.c — fast CPU kernels for scaled dot-product attention with
 * grouped KV heads (f32), forward and backward.
 *
 * Forward: one task per query row (b, h, t); keys are scored a block at a
 * time into a small stack buffer and folded in with an online softmax, so
 * no thread ever holds more than QK_BLOCK scores. The row's log-sum-exp is
 * kept so that backward can recompute probabilities exactly.
 * Backward: (1) per query row, delta = sum_s p_s (dout . v_s) and dq;
 * (2) per block of KV_BLOCK keys of one KV head, dk and dv summed over the
 * group's query heads and rows — each task owns its output rows, so there
 * are no atomics and results do not depend on the thread count.
 * The naive version is in kernels/ref/fused_attention.c. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf. */
#pragma GCC optimize("no-trapping-math")
#include "internal.h"
#include "fused.h"

enum {
    QK_BLOCK = 64,   /* scores one query row holds at once */
    KV_BLOCK = 16    /* key rows whose dk/dv one backward task accumulates */
};

static inline float dotf(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void axpyf(float *y, float alpha, const float *x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

static inline void scalef(float *y, float alpha, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] *= alpha;
}

/* Query t may see keys [0, end) before the key mask: with S - T cached
 * tokens in front, causal query t is token S - T + t. */
static inline int64_t key_end(const empo_attn_shape *a, int64_t t) {
    if (!a->causal) return a->S;
    int64_t e = t + (a->S - a->T) + 1;
    return e < a->S ? e : a->S;
}

/* Where query row r = (b, h, t) reads its keys, values and mask. */
typedef struct {
    int64_t t;
    const float *k, *v;   // (S, Dh) each, the row's KV head
    const float *keep;    // (S) or NULL
} row_src;

static inline row_src row_source(const empo_attn_shape *a, const float *k, const float *v,
                                 const float *keep, int64_t r) {
    const int64_t t = r % a->T, bh = r / a->T, h = bh % a->Hq, b = bh / a->Hq;
    const int64_t kvh = h / (a->Hq / a->Hkv);
    const int64_t off = (b * a->Hkv + kvh) * a->S * a->Dh;
    row_src src = {t, k + off, v + off, keep ? keep + b * a->S : NULL};
    return src;
}

/* Scaled scores of keys s0..s0+n-1 into sc (hidden keys: -inf); returns
 * their max. */
static float score_block(float *sc, const float *qr, const row_src *src, int64_t s0, int64_t n,
                         int64_t Dh, float scale) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        const int64_t s = s0 + j;
        int hidden = src->keep && src->keep[s] == 0.0f;
        sc[j] = hidden ? -INFINITY : scale * dotf(qr, src->k + s * Dh, Dh);
        mx = sc[j] > mx ? sc[j] : mx;
    }
    return mx;
}

static void row_forward(float *o, float *lse, const float *qr, const row_src *src, int64_t end,
                        int64_t Dh, float scale) {
    float sc[QK_BLOCK];
    float m = -INFINITY, l = 0.0f;   /* running max and sum of exp(score - m) */
    for (int64_t d = 0; d < Dh; d++) o[d] = 0.0f;
    for (int64_t s0 = 0; s0 < end; s0 += QK_BLOCK) {
        const int64_t n = end - s0 < QK_BLOCK ? end - s0 : QK_BLOCK;
        const float bm = score_block(sc, qr, src, s0, n, Dh, scale);
        if (bm == -INFINITY) continue;   /* the whole block is hidden */
        if (bm > m) {                    /* re-express the partial sums against the new max */
            const float c = empo_k_expf(m - bm);
            l *= c;
            scalef(o, c, Dh);
            m = bm;
        }
#pragma omp simd reduction(+ : l)
        for (int64_t j = 0; j < n; j++) {
            sc[j] = empo_k_expf(sc[j] - m);
            l += sc[j];
        }
        for (int64_t j = 0; j < n; j++)
            if (sc[j] != 0.0f) axpyf(o, sc[j], src->v + (s0 + j) * Dh, Dh);
    }
    if (l > 0.0f) {
        scalef(o, 1.0f / l, Dh);
        *lse = m + logf(l);
    } else {
        *lse = -INFINITY;   /* no visible key: the output row stays zero */
    }
}

void empo_k_attention_forward(float *out, float *lse, const float *q, const float *k,
                              const float *v, const float *keep, const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T, Dh = a->Dh;
#pragma omp parallel for num_threads(empo_omp_threads_for(rows * a->S * Dh)) \
    schedule(dynamic, 8)
    for (int64_t r = 0; r < rows; r++) {
        const row_src src = row_source(a, k, v, keep, r);
        row_forward(out + r * Dh, lse + r, q + r * Dh, &src, key_end(a, src.t), Dh, a->scale);
    }
}

/* For keys s0..s0+n-1 of one query row: p = softmax probability (0 when
 * hidden), dp = dout . v_s. */
static void prob_block(float *p, float *dp, const float *qr, const float *g, const row_src *src,
                       float lse, int64_t s0, int64_t n, int64_t Dh, float scale) {
    for (int64_t j = 0; j < n; j++) {
        const int64_t s = s0 + j;
        int hidden = src->keep && src->keep[s] == 0.0f;
        p[j] = hidden ? -INFINITY : scale * dotf(qr, src->k + s * Dh, Dh) - lse;
        dp[j] = hidden ? 0.0f : dotf(g, src->v + s * Dh, Dh);
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) p[j] = empo_k_expf(p[j]);
}

/* delta = sum_s p_s dp_s (= dout . out), then dq = scale * sum_s p_s (dp_s - delta) k_s. */
static void row_backward_q(float *dq, float *delta, const float *g, const float *qr,
                           const row_src *src, float lse, int64_t end, int64_t Dh, float scale) {
    float p[QK_BLOCK], dp[QK_BLOCK];
    if (dq) for (int64_t d = 0; d < Dh; d++) dq[d] = 0.0f;
    *delta = 0.0f;
    if (lse == -INFINITY) return;   /* row saw no key: no gradient */
    float D = 0.0f;
    for (int64_t s0 = 0; s0 < end; s0 += QK_BLOCK) {
        const int64_t n = end - s0 < QK_BLOCK ? end - s0 : QK_BLOCK;
        prob_block(p, dp, qr, g, src, lse, s0, n, Dh, scale);
#pragma omp simd reduction(+ : D)
        for (int64_t j = 0; j < n; j++) D += p[j] * dp[j];
    }
    *delta = D;
    if (!dq) return;
    for (int64_t s0 = 0; s0 < end; s0 += QK_BLOCK) {
        const int64_t n = end - s0 < QK_BLOCK ? end - s0 : QK_BLOCK;
        prob_block(p, dp, qr, g, src, lse, s0, n, Dh, scale);
        for (int64_t j = 0; j < n; j++)
            if (p[j] != 0.0f) axpyf(dq, scale * p[j] * (dp[j] - D), src->k + (s0 + j) * Dh, Dh);
    }
}

/* dk, dv rows s0..s1-1 of KV head (b, kvh), summed over the query heads
 * that share it and every query row that sees each key. */
static void kv_block_backward(float *dk, float *dv, const float *dout, const float *q,
                              const float *lse, const float *delta, const row_src *src,
                              int64_t b, int64_t kvh, int64_t s0, int64_t s1,
                              const empo_attn_shape *a) {
    const int64_t Dh = a->Dh, rep = a->Hq / a->Hkv, shift = a->S - a->T;
    for (int64_t i = s0 * Dh; i < s1 * Dh; i++) {
        if (dk) dk[i] = 0.0f;
        if (dv) dv[i] = 0.0f;
    }
    for (int64_t h = kvh * rep; h < (kvh + 1) * rep; h++) {
        const int64_t t0 = a->causal && s0 - shift > 0 ? s0 - shift : 0;
        for (int64_t t = t0; t < a->T; t++) {
            const int64_t r = (b * a->Hq + h) * a->T + t;
            if (lse[r] == -INFINITY) continue;
            const float *qt = q + r * Dh, *gt = dout + r * Dh;   // (Dh) each
            const int64_t hi = a->causal && t + shift + 1 < s1 ? t + shift + 1 : s1;
            for (int64_t s = s0; s < hi; s++) {
                if (src->keep && src->keep[s] == 0.0f) continue;
                const float p = empo_k_expf(a->scale * dotf(qt, src->k + s * Dh, Dh) - lse[r]);
                if (dv) axpyf(dv + s * Dh, p, gt, Dh);
                if (dk) {
                    const float ds = p * (dotf(gt, src->v + s * Dh, Dh) - delta[r]);
                    axpyf(dk + s * Dh, a->scale * ds, qt, Dh);
                }
            }
        }
    }
}

void empo_k_attention_backward(float *dq, float *dk, float *dv, float *delta, const float *dout,
                               const float *q, const float *k, const float *v, const float *keep,
                               const float *lse, const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T, Dh = a->Dh, work = rows * a->S * Dh;
    if (dq || dk) {   /* dv alone does not need delta */
#pragma omp parallel for num_threads(empo_omp_threads_for(work)) schedule(dynamic, 8)
        for (int64_t r = 0; r < rows; r++) {
            const row_src src = row_source(a, k, v, keep, r);
            row_backward_q(dq ? dq + r * Dh : NULL, delta + r, dout + r * Dh, q + r * Dh, &src,
                           lse[r], key_end(a, src.t), Dh, a->scale);
        }
    }
    if (!dk && !dv) return;
    const int64_t nblk = (a->S + KV_BLOCK - 1) / KV_BLOCK, units = a->B * a->Hkv * nblk;
#pragma omp parallel for num_threads(empo_omp_threads_for(work)) schedule(dynamic, 1)
    for (int64_t u = 0; u < units; u++) {
        const int64_t blk = u % nblk, b = u / nblk / a->Hkv, kvh = u / nblk % a->Hkv;
        const int64_t off = (b * a->Hkv + kvh) * a->S * Dh;
        const row_src src = {0, k + off, v + off, keep ? keep + b * a->S : NULL};
        const int64_t s0 = blk * KV_BLOCK, s1 = s0 + KV_BLOCK < a->S ? s0 + KV_BLOCK : a->S;
        kv_block_backward(dk ? dk + off : NULL, dv ? dv + off : NULL, dout, q, lse, delta, &src, b,
                          kvh, s0, s1, a);
    }
}
