/* fused_attention.c — fast CPU kernels for scaled dot-product attention with
 * grouped KV heads (f32), forward and backward.
 *
 * Forward: one task per query row (b, h, t). Keys are taken a block at a
 * time: their scores go to a small stack buffer, are folded into an online
 * softmax, and the block's values are added with their weights. No thread
 * ever holds more than QK_BLOCK scores. The row's log-sum-exp is kept so
 * that backward can recompute the probabilities exactly.
 * Backward: (1) per query row, delta = sum_s p_s (dout . v_s) and dq
 * (p and dp of up to ROW_KEYS keys kept on the stack between the two);
 * (2) per block of KV_BLOCK keys of one KV head, dk and dv summed over the
 * query heads that share it — each task owns the rows it writes, so there
 * are no atomics and results do not depend on the thread count.
 *
 * Everything reduces to two register-blocked primitives over rows of a
 * [m, n] matrix: matvec (m dot products) and vecmat_acc (a weighted sum of
 * rows). Keys hidden by the mask are never multiplied, so whatever an
 * unused KV-cache slot holds (even NaN) cannot leak into the result.
 * The naive version is in kernels/ref/fused_attention.c. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf. */
#pragma GCC optimize("no-trapping-math")
#include <string.h>
#include "internal.h"
#include "fused.h"

enum {
    QK_BLOCK = 64,   /* keys one query row scores at once in forward (stack buffer) */
    ROW_KEYS = 2048, /* keys whose p and dp one backward row keeps (16 KiB of stack) */
    KV_BLOCK = 16,   /* key rows whose dk/dv one backward task owns */
    T_BLOCK = 64     /* query rows a backward task scores at once */
};

/* 8 floats in one AVX register (a GCC/Clang vector extension): it keeps
 * partial sums out of memory, which plain arrays do not guarantee. memcpy
 * makes the loads and stores alignment-free. */
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

/* a . b, sum and max of n floats, with the partial results in registers
 * (an omp simd reduction spills its lanes to memory and adds them one by
 * one, which costs more than these short loops themselves). */
static float dotf(const float *a, const float *b, int64_t n) {
    v8f acc = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc += load8(a + i) * load8(b + i);
    float s = hsum8(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static float sumf(const float *x, int64_t n) {
    v8f acc = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc += load8(x + i);
    float s = hsum8(acc);
    for (; i < n; i++) s += x[i];
    return s;
}

static float maxf(const float *x, int64_t n) {
    v8f acc = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const v8f v = load8(x + i);
        for (int j = 0; j < 8; j++) acc[j] = v[j] > acc[j] ? v[j] : acc[j];   /* one vmaxps */
    }
    float m = -INFINITY;
    for (int j = 0; j < 8; j++) m = acc[j] > m ? acc[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static void scalef(float *y, float c, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] *= c;
}

/* out[j] = X[j, :] . x for the m rows of X [m, n]; four rows at a time
 * share the loads of x and overlap their add chains. */
static void matvec(float *out, const float *X, const float *x, int64_t m, int64_t n) {
    int64_t j = 0;
    for (; j + 4 <= m; j += 4) {
        const float *r0 = X + j * n, *r1 = r0 + n, *r2 = r1 + n, *r3 = r2 + n;
        v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        int64_t d = 0;
        for (; d + 8 <= n; d += 8) {
            const v8f xv = load8(x + d);
            a0 += load8(r0 + d) * xv;
            a1 += load8(r1 + d) * xv;
            a2 += load8(r2 + d) * xv;
            a3 += load8(r3 + d) * xv;
        }
        float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);
        for (; d < n; d++) {
            s0 += r0[d] * x[d];
            s1 += r1[d] * x[d];
            s2 += r2[d] * x[d];
            s3 += r3[d] * x[d];
        }
        out[j] = s0, out[j + 1] = s1, out[j + 2] = s2, out[j + 3] = s3;
    }
    for (; j < m; j++) out[j] = dotf(X + j * n, x, n);
}

/* y[:] += sum_j c[j] X[j, :] over the m rows of X [m, n]; 32 columns of y
 * stay in registers while the rows stream by. Rows with c[j] == 0 are
 * skipped, not multiplied (hidden keys may hold anything). */
static void vecmat_acc(float *y, const float *c, const float *X, int64_t m, int64_t n) {
    int64_t d = 0;
    for (; d + 32 <= n; d += 32) {
        v8f a0 = load8(y + d), a1 = load8(y + d + 8), a2 = load8(y + d + 16), a3 = load8(y + d + 24);
        for (int64_t j = 0; j < m; j++) {
            if (c[j] == 0.0f) continue;
            const float *r = X + j * n + d;
            a0 += c[j] * load8(r);
            a1 += c[j] * load8(r + 8);
            a2 += c[j] * load8(r + 16);
            a3 += c[j] * load8(r + 24);
        }
        store8(y + d, a0), store8(y + d + 8, a1), store8(y + d + 16, a2), store8(y + d + 24, a3);
    }
    for (; d + 8 <= n; d += 8) {
        v8f a = load8(y + d);
        for (int64_t j = 0; j < m; j++)
            if (c[j] != 0.0f) a += c[j] * load8(X + j * n + d);
        store8(y + d, a);
    }
    for (; d < n; d++)
        for (int64_t j = 0; j < m; j++)
            if (c[j] != 0.0f) y[d] += c[j] * X[j * n + d];
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
    const float *k, *v;   // (S, Dh) each: the row's KV head
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
    matvec(sc, src->k + s0 * Dh, qr, n, Dh);
    const float *keep = src->keep ? src->keep + s0 : NULL;
    if (keep) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) sc[j] = keep[j] == 0.0f ? -INFINITY : scale * sc[j];
    } else {
        scalef(sc, scale, n);
    }
    return maxf(sc, n);
}

static void row_forward(float *o, float *lse, const float *qr, const row_src *src, int64_t end,
                        int64_t Dh, float scale) {
    float sc[QK_BLOCK];
    float m = -INFINITY, l = 0.0f;   /* running max and sum of exp(score - m) */
    memset(o, 0, sizeof(float) * (size_t)Dh);
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
#pragma omp simd
        for (int64_t j = 0; j < n; j++) sc[j] = empo_k_expf(sc[j] - m);
        l += sumf(sc, n);
        vecmat_acc(o, sc, src->v + s0 * Dh, n, Dh);
    }
    if (l > 0.0f) {
        scalef(o, 1.0f / l, Dh);
        *lse = m + logf(l);
    } else {
        *lse = -INFINITY;   /* no visible key: the output row stays zero */
    }
}

static void forward_task(float *out, float *lse, const float *q, const float *k, const float *v,
                         const float *keep, const empo_attn_shape *a, int64_t r) {
    const row_src src = row_source(a, k, v, keep, r);
    row_forward(out + r * a->Dh, lse + r, q + r * a->Dh, &src, key_end(a, src.t), a->Dh, a->scale);
}

void empo_k_attention_forward(float *out, float *lse, const float *q, const float *k,
                              const float *v, const float *keep, const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T;
    const int nt = empo_omp_threads_for(rows * a->S * a->Dh);
    if (nt == 1) {   /* no OpenMP region for small work (a decode step): entering one costs ~0.4 us */
        for (int64_t r = 0; r < rows; r++) forward_task(out, lse, q, k, v, keep, a, r);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8)
    for (int64_t r = 0; r < rows; r++) forward_task(out, lse, q, k, v, keep, a, r);
}

/* For keys s0..s0+n-1 of one query row: p = softmax probability and
 * dp = dout . v_s, both 0 for hidden keys. */
static void prob_block(float *p, float *dp, const float *qr, const float *g, const row_src *src,
                       float lse, int64_t s0, int64_t n, int64_t Dh, float scale) {
    matvec(p, src->k + s0 * Dh, qr, n, Dh);
    matvec(dp, src->v + s0 * Dh, g, n, Dh);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) p[j] = empo_k_expf(scale * p[j] - lse);
    const float *keep = src->keep ? src->keep + s0 : NULL;
    if (keep) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            p[j] = keep[j] == 0.0f ? 0.0f : p[j];
            dp[j] = keep[j] == 0.0f ? 0.0f : dp[j];
        }
    }
}

/* delta = sum_s p_s dp_s (= dout . out), then, when dq is wanted,
 * dq = scale * sum_s p_s (dp_s - delta) k_s. Keys go in windows of
 * ROW_KEYS: when the row's keys fit in one window (the usual case) p and
 * dp are computed once and reused; longer rows compute them twice. */
static void row_backward_q(float *dq, float *delta, const float *g, const float *qr,
                           const row_src *src, float lse, int64_t end, int64_t Dh, float scale) {
    float p[ROW_KEYS], dp[ROW_KEYS];
    if (dq) memset(dq, 0, sizeof(float) * (size_t)Dh);
    *delta = 0.0f;
    if (lse == -INFINITY) return;   /* the row saw no key: no gradient */
    const int kept = end <= ROW_KEYS;
    float D = 0.0f;
    for (int64_t s0 = 0; s0 < end; s0 += ROW_KEYS) {
        const int64_t n = end - s0 < ROW_KEYS ? end - s0 : ROW_KEYS;
        prob_block(p, dp, qr, g, src, lse, s0, n, Dh, scale);
        D += dotf(p, dp, n);
    }
    *delta = D;
    for (int64_t s0 = 0; dq && s0 < end; s0 += ROW_KEYS) {
        const int64_t n = end - s0 < ROW_KEYS ? end - s0 : ROW_KEYS;
        if (!kept) prob_block(p, dp, qr, g, src, lse, s0, n, Dh, scale);
#pragma omp simd
        for (int64_t j = 0; j < n; j++) p[j] = scale * p[j] * (dp[j] - D);
        vecmat_acc(dq, p, src->k + s0 * Dh, n, Dh);
    }
}

/* Where a backward task reads one query head: its rows of q, dout, lse
 * and delta, from query row t0 on. */
typedef struct {
    const float *q, *g;          // (T, Dh) each
    const float *lse, *delta;    // (T) each
} head_rows;

/* dk_s and dv_s (rows of the task's KV head) from query rows t0..t0+n-1
 * of one head: pc = p, dc = scale * p * (dp - delta), 0 where key s is
 * not visible to the query. */
static void key_backward(float *dk_s, float *dv_s, const float *k_s, const float *v_s,
                         const head_rows *hr, int64_t s, int64_t t0, int64_t n,
                         const empo_attn_shape *a) {
    float pc[T_BLOCK], dc[T_BLOCK];
    const int64_t Dh = a->Dh, shift = a->S - a->T;
    matvec(pc, hr->q + t0 * Dh, k_s, n, Dh);
    matvec(dc, hr->g + t0 * Dh, v_s, n, Dh);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        const float L = hr->lse[t0 + j];
        const int seen = (!a->causal || s <= t0 + j + shift) && L > -INFINITY;
        const float p = seen ? empo_k_expf(a->scale * pc[j] - L) : 0.0f;
        dc[j] = seen ? a->scale * p * (dc[j] - hr->delta[t0 + j]) : 0.0f;
        pc[j] = p;
    }
    if (dv_s) vecmat_acc(dv_s, pc, hr->g + t0 * Dh, n, Dh);
    if (dk_s) vecmat_acc(dk_s, dc, hr->q + t0 * Dh, n, Dh);
}

/* dk, dv rows s0..s1-1 of KV head (b, kvh), summed over the query heads
 * that share it and every query row that sees each key. */
static void kv_block_backward(float *dk, float *dv, const float *dout, const float *q,
                              const float *lse, const float *delta, const row_src *src,
                              int64_t b, int64_t kvh, int64_t s0, int64_t s1,
                              const empo_attn_shape *a) {
    const int64_t Dh = a->Dh, rep = a->Hq / a->Hkv, shift = a->S - a->T;
    if (dk) memset(dk + s0 * Dh, 0, sizeof(float) * (size_t)((s1 - s0) * Dh));
    if (dv) memset(dv + s0 * Dh, 0, sizeof(float) * (size_t)((s1 - s0) * Dh));
    /* causal: key s0 is first seen by query s0 - shift */
    const int64_t t_first = a->causal && s0 - shift > 0 ? s0 - shift : 0;
    for (int64_t h = kvh * rep; h < (kvh + 1) * rep; h++) {
        const int64_t r0 = (b * a->Hq + h) * a->T;
        const head_rows hr = {q + r0 * Dh, dout + r0 * Dh, lse + r0, delta + r0};
        for (int64_t t0 = t_first; t0 < a->T; t0 += T_BLOCK) {
            const int64_t n = a->T - t0 < T_BLOCK ? a->T - t0 : T_BLOCK;
            for (int64_t s = s0; s < s1; s++) {
                if (src->keep && src->keep[s] == 0.0f) continue;
                key_backward(dk ? dk + s * Dh : NULL, dv ? dv + s * Dh : NULL, src->k + s * Dh,
                             src->v + s * Dh, &hr, s, t0, n, a);
            }
        }
    }
}

/* Backward pass 1 for query row r: delta[r] and, when wanted, dq[r]. */
static void q_task(float *dq, float *delta, const float *dout, const float *q, const float *k,
                   const float *v, const float *keep, const float *lse, const empo_attn_shape *a,
                   int64_t r) {
    const row_src src = row_source(a, k, v, keep, r);
    const int64_t Dh = a->Dh;
    row_backward_q(dq ? dq + r * Dh : NULL, delta + r, dout + r * Dh, q + r * Dh, &src, lse[r],
                   key_end(a, src.t), Dh, a->scale);
}

/* Backward pass 2 for unit u = (b, kvh, key block): its rows of dk, dv. */
static void kv_task(float *dk, float *dv, const float *dout, const float *q, const float *k,
                    const float *v, const float *keep, const float *lse, const float *delta,
                    const empo_attn_shape *a, int64_t u) {
    const int64_t nblk = (a->S + KV_BLOCK - 1) / KV_BLOCK;
    const int64_t blk = u % nblk, b = u / nblk / a->Hkv, kvh = u / nblk % a->Hkv;
    const int64_t off = (b * a->Hkv + kvh) * a->S * a->Dh;
    const row_src src = {0, k + off, v + off, keep ? keep + b * a->S : NULL};
    const int64_t s0 = blk * KV_BLOCK, s1 = s0 + KV_BLOCK < a->S ? s0 + KV_BLOCK : a->S;
    kv_block_backward(dk ? dk + off : NULL, dv ? dv + off : NULL, dout, q, lse, delta, &src, b, kvh,
                      s0, s1, a);
}

void empo_k_attention_backward(float *dq, float *dk, float *dv, float *delta, const float *dout,
                               const float *q, const float *k, const float *v, const float *keep,
                               const float *lse, const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T;
    const int64_t units = a->B * a->Hkv * ((a->S + KV_BLOCK - 1) / KV_BLOCK);
    const int nt = empo_omp_threads_for(rows * a->S * a->Dh);
    const int need_delta = dq || dk, need_kv = dk || dv;   /* dv alone does not need delta */
    if (nt == 1) {
        for (int64_t r = 0; need_delta && r < rows; r++) q_task(dq, delta, dout, q, k, v, keep, lse, a, r);
        for (int64_t u = 0; need_kv && u < units; u++) kv_task(dk, dv, dout, q, k, v, keep, lse, delta, a, u);
        return;
    }
    if (need_delta) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8)
        for (int64_t r = 0; r < rows; r++) q_task(dq, delta, dout, q, k, v, keep, lse, a, r);
    }
    if (need_kv) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t u = 0; u < units; u++) kv_task(dk, dv, dout, q, k, v, keep, lse, delta, a, u);
    }
}
