/* test_fused.c — the fused transformer kernels and ops: RMSNorm, SwiGLU,
 * rotary embedding, grouped-query attention, token log-prob + entropy.
 *
 * 1. Fast kernels (kernels/cpu) against the naive references (kernels/ref)
 *    on raw arrays: odd sizes, GQA ratios 1/2/4, T = 1 decode with S > T,
 *    key masks (including rows that see no key), forward and backward,
 *    relative error <= 1e-5; NaN in masked KV slots never leaks.
 * 2. Each op's backward through the public API against f32 central
 *    differences of loss = sum(out * W) for fixed random W, with the fast
 *    and then the reference kernels.
 * 3. Semantics: KV-cache alignment, GQA = repeated heads, rope identities,
 *    uniform logits, NaN-free masked rows, strided inputs.
 * 4. Errors: wrong shapes, dtypes, ids out of range, non-finite logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/fused.h"
#include "kernels/tile_gemm.h"

#define KERNEL_TOL 1e-5
#define FD_TOL 2e-3

static double worst_kernel_err;   /* reported at the end */

static float *rnd(int64_t n, uint64_t seed, float scale) {
    float *a = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    check_fill_uniform(a, n, seed);
    for (int64_t i = 0; i < n; i++) a[i] *= scale;
    return a;
}

static float *zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

static int all_finite(const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* fast vs reference: both finite and within KERNEL_TOL */
static void cmp(const char *what, int64_t tag, const float *fast, const float *ref, int64_t n) {
    double e = n > 0 ? check_rel_err(fast, ref, n) : 0.0;
    if (e > worst_kernel_err || e != e) worst_kernel_err = e;
    check_report(__FILE__, __LINE__, e <= KERNEL_TOL && all_finite(fast, n), "%s (case %lld): rel err %.3g",
                 what, (long long)tag, e);
}

/* log-sum-exps may be -inf (rows with no visible key): same places, and
 * close elsewhere */
static void cmp_lse(const char *what, int64_t tag, const float *fast, const float *ref, int64_t n) {
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        if (isinf(ref[i]) || isinf(fast[i])) ok &= fast[i] == ref[i];
        else ok &= fabs(fast[i] - ref[i]) <= KERNEL_TOL * fmax(1.0, fabs(ref[i]));
    }
    check_report(__FILE__, __LINE__, ok, "%s (case %lld): lse differs", what, (long long)tag);
}

/* ---- 1. fast kernels vs references ---- */

static void test_k_rmsnorm(void) {
    static const int64_t shapes[][2] = {{1, 3}, {3, 7}, {17, 64}, {5, 333}, {40, 1000}};
    for (int c = 0; c < 5; c++) {
        const int64_t N = shapes[c][0], D = shapes[c][1], n = N * D;
        float *x = rnd(n, 10 + c, 2.0f), *w = rnd(D, 20 + c, 1.0f), *g = rnd(n, 30 + c, 1.0f);
        float *y1 = zeros(n), *y2 = zeros(n), *r1 = zeros(N), *r2 = zeros(N);
        float *dx1 = zeros(n), *dx2 = zeros(n), *dw1 = zeros(D), *dw2 = zeros(D), *dw3 = zeros(D);
        empo_k_rmsnorm_forward(y1, r1, x, w, N, D, 1e-6f);
        empo_ref_rmsnorm_forward(y2, r2, x, w, N, D, 1e-6f);
        cmp("rmsnorm out", c, y1, y2, n);
        cmp("rmsnorm rstd", c, r1, r2, N);
        empo_k_rmsnorm_backward(dx1, dw1, g, x, w, r2, N, D);
        empo_ref_rmsnorm_backward(dx2, dw2, g, x, w, r2, N, D);
        cmp("rmsnorm dx", c, dx1, dx2, n);
        cmp("rmsnorm dw", c, dw1, dw2, D);
        empo_k_rmsnorm_backward(NULL, dw3, g, x, w, r2, N, D);   /* weight gradient alone */
        cmp("rmsnorm dw alone", c, dw3, dw2, D);
        float *bufs[] = {x, w, g, y1, y2, r1, r2, dx1, dx2, dw1, dw2, dw3};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    }
}

static void test_k_swiglu(void) {
    static const int64_t sizes[] = {1, 7, 1000, 40000};
    for (int c = 0; c < 4; c++) {
        const int64_t n = sizes[c];
        float *gate = rnd(n, 40 + c, 12.0f), *up = rnd(n, 50 + c, 2.0f), *g = rnd(n, 60 + c, 1.0f);
        float *y1 = zeros(n), *y2 = zeros(n), *dg1 = zeros(n), *dg2 = zeros(n), *du1 = zeros(n), *du2 = zeros(n);
        empo_k_swiglu_forward(y1, gate, up, n);
        empo_ref_swiglu_forward(y2, gate, up, n);
        cmp("swiglu out", c, y1, y2, n);
        empo_k_swiglu_backward(dg1, du1, g, gate, up, n);
        empo_ref_swiglu_backward(dg2, du2, g, gate, up, n);
        cmp("swiglu dgate", c, dg1, dg2, n);
        cmp("swiglu dup", c, du1, du2, n);
        float *bufs[] = {gate, up, g, y1, y2, dg1, dg2, du1, du2};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    }
    /* saturated gates stay finite in both directions */
    float gate[4] = {-200.0f, -90.0f, 90.0f, 200.0f}, up[4] = {1, 1, 1, 1}, one[4] = {1, 1, 1, 1};
    float y[4], dg[4], du[4];
    empo_k_swiglu_forward(y, gate, up, 4);
    empo_k_swiglu_backward(dg, du, one, gate, up, 4);
    CHECK(all_finite(y, 4) && all_finite(dg, 4) && all_finite(du, 4));
    CHECK(y[0] == 0.0f && y[3] == 200.0f && dg[3] == 1.0f);
}

static void test_k_rope(void) {
    static const int64_t shapes[][4] = {{1, 1, 1, 2}, {2, 3, 5, 8}, {1, 2, 7, 18}, {2, 2, 3, 200}, {3, 4, 33, 128}};
    static const double thetas[] = {10000.0, 1e6, 500.0, 10000.0, 1e6};
    for (int c = 0; c < 5; c++) {
        const int64_t B = shapes[c][0], H = shapes[c][1], T = shapes[c][2], Dh = shapes[c][3];
        const int64_t n = B * H * T * Dh;
        float *x = rnd(n, 70 + c, 1.0f), *u = rnd(B * T, 80 + c, 1.0f);
        int64_t *pos = malloc(sizeof(int64_t) * (size_t)(B * T));
        for (int64_t i = 0; i < B * T; i++) pos[i] = (int64_t)((u[i] + 1.0f) * 20000.0f);   /* up to 40k */
        float *y1 = zeros(n), *y2 = zeros(n), *d1 = zeros(n), *d2 = zeros(n);
        empo_k_rope_forward(y1, x, pos, B, H, T, Dh, thetas[c]);
        empo_ref_rope_forward(y2, x, pos, B, H, T, Dh, thetas[c]);
        cmp("rope out", c, y1, y2, n);
        empo_k_rope_backward(d1, x, pos, B, H, T, Dh, thetas[c]);
        empo_ref_rope_backward(d2, x, pos, B, H, T, Dh, thetas[c]);
        cmp("rope dx", c, d1, d2, n);
        /* backward of forward is the identity (rotations are orthogonal) */
        empo_k_rope_backward(d1, y1, pos, B, H, T, Dh, thetas[c]);
        cmp("rope inverse", c, d1, x, n);
        float *bufs[] = {x, u, y1, y2, d1, d2};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
        free(pos);
    }
}

/* mask 0: none; 1: ~25% of keys hidden; 2: like 1, plus batch row 0 fully
 * hidden and the first 3 keys of row 1 hidden (its first causal queries
 * see nothing) */
static float *attn_mask(int mode, int64_t B, int64_t S, uint64_t seed) {
    if (mode == 0) return NULL;
    float *m = rnd(B * S, seed, 1.0f);
    for (int64_t i = 0; i < B * S; i++) m[i] = m[i] > -0.5f ? 1.0f : 0.0f;
    for (int64_t s = 0; mode == 2 && s < S; s++) {
        m[s] = 0.0f;
        if (B > 1 && s < 3) m[S + s] = 0.0f;
    }
    return m;
}

typedef struct {
    int64_t B, Hq, Hkv, T, S, Dh;
    int causal, mask;
} attn_case;

static const attn_case attn_cases[] = {
    {1, 1, 1, 1, 1, 1, 1, 0},     /* smallest */
    {2, 4, 4, 5, 5, 8, 1, 0},     /* GQA ratio 1, square causal */
    {2, 4, 2, 5, 9, 8, 1, 1},     /* ratio 2, 4 cached tokens, random mask */
    {1, 8, 2, 1, 17, 16, 1, 1},   /* decode: T = 1, S = 17, ratio 4 */
    {2, 4, 1, 7, 7, 5, 0, 1},     /* not causal, ratio 4, odd head dim */
    {2, 2, 1, 3, 150, 33, 1, 2},  /* keys span several score blocks; empty rows */
    {2, 6, 3, 70, 70, 16, 1, 2},  /* queries span blocks, ratio 2, empty rows */
    {1, 4, 2, 9, 4, 7, 0, 0},     /* cross-attention with S < T */
    {1, 2, 1, 3, 2100, 8, 1, 1},  /* many key blocks, few queries */
    {3, 4, 2, 100, 100, 32, 1, 1}, /* query tiles and key blocks both partial */
    {2, 2, 2, 40, 130, 24, 1, 0},  /* 90 cached keys in front: tiles start mid-block */
    {1, 4, 1, 33, 65, 40, 0, 2},   /* not causal, Dh with an 8-wide column tail */
};

static float *attn_work(const empo_attn_shape *a) { return zeros(empo_k_attention_work(a)); }

static void attn_backward_both(const attn_case *c, const empo_attn_shape *a, const float *g, const float *q,
                               const float *k, const float *v, const float *out, const float *keep,
                               const float *lse, int tag) {
    const int64_t nq = c->B * c->Hq * c->T * c->Dh, nkv = c->B * c->Hkv * c->S * c->Dh;
    float *dq1 = zeros(nq), *dk1 = zeros(nkv), *dv1 = zeros(nkv), *dq2 = zeros(nq), *dk2 = zeros(nkv);
    float *dv2 = zeros(nkv), *dv3 = zeros(nkv), *dk3 = zeros(nkv), *dq3 = zeros(nq), *work = attn_work(a);
    empo_k_attention_backward(dq1, dk1, dv1, work, g, q, k, v, out, keep, lse, a);
    empo_ref_attention_backward(dq2, dk2, dv2, NULL, g, q, k, v, out, keep, lse, a);
    cmp("attention dq", tag, dq1, dq2, nq);
    cmp("attention dk", tag, dk1, dk2, nkv);
    cmp("attention dv", tag, dv1, dv2, nkv);
    empo_k_attention_backward(NULL, NULL, dv3, work, g, q, k, v, out, keep, lse, a);   /* dv alone */
    empo_k_attention_backward(NULL, dk3, NULL, work, g, q, k, v, out, keep, lse, a);   /* dk alone */
    empo_k_attention_backward(dq3, NULL, NULL, work, g, q, k, v, out, keep, lse, a);   /* dq alone */
    cmp("attention dv alone", tag, dv3, dv2, nkv);
    cmp("attention dk alone", tag, dk3, dk2, nkv);
    cmp("attention dq alone", tag, dq3, dq2, nq);
    float *bufs[] = {dq1, dk1, dv1, dq2, dk2, dv2, dv3, dk3, dq3, work};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

static void test_k_attention(void) {
    for (int c = 0; c < (int)(sizeof attn_cases / sizeof *attn_cases); c++) {
        const attn_case *ac = &attn_cases[c];
        const empo_attn_shape a = {ac->B, ac->Hq, ac->Hkv, ac->T, ac->S, ac->Dh, ac->causal,
                                   (float)(1.0 / sqrt((double)ac->Dh))};
        const int64_t nq = ac->B * ac->Hq * ac->T * ac->Dh, nkv = ac->B * ac->Hkv * ac->S * ac->Dh;
        const int64_t rows = ac->B * ac->Hq * ac->T;
        float *q = rnd(nq, 100 + c, 2.0f), *k = rnd(nkv, 110 + c, 2.0f), *v = rnd(nkv, 120 + c, 1.0f);
        float *g = rnd(nq, 130 + c, 1.0f), *keep = attn_mask(ac->mask, ac->B, ac->S, 140 + c);
        float *o1 = zeros(nq), *o2 = zeros(nq), *l1 = zeros(rows), *l2 = zeros(rows), *work = attn_work(&a);
        empo_k_attention_forward(o1, l1, work, q, k, v, keep, &a);
        empo_ref_attention_forward(o2, l2, NULL, q, k, v, keep, &a);
        free(work);
        cmp("attention out", c, o1, o2, nq);
        cmp_lse("attention lse", c, l1, l2, rows);
        attn_backward_both(ac, &a, g, q, k, v, o1, keep, l1, c);
        if (ac->mask == 2) {   /* batch row 0 sees nothing: zeros, not NaN */
            int zero = 1;
            for (int64_t i = 0; i < ac->Hq * ac->T * ac->Dh; i++) zero &= o1[i] == 0.0f;
            CHECK(zero);
        }
        float *bufs[] = {q, k, v, g, keep, o1, o2, l1, l2};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    }
}

/* Keys hidden by the mask are never read: NaN in their k/v rows (an
 * unused KV-cache slot) changes nothing, forward or backward. */
static void attn_poison_hidden(float *k, float *v, const float *keep, const attn_case *c) {
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t s = 0; s < c->S; s++)
            for (int64_t h = 0; keep[b * c->S + s] == 0.0f && h < c->Hkv; h++)
                for (int64_t d = 0; d < c->Dh; d++) {
                    k[((b * c->Hkv + h) * c->S + s) * c->Dh + d] = NAN;
                    v[((b * c->Hkv + h) * c->S + s) * c->Dh + d] = NAN;
                }
}

static void test_k_attention_hidden_nan(void) {
    for (int c = 2; c < 7; c++) {
        const attn_case *ac = &attn_cases[c];
        if (!ac->mask) continue;
        const empo_attn_shape a = {ac->B, ac->Hq, ac->Hkv, ac->T, ac->S, ac->Dh, ac->causal, 0.3f};
        const int64_t nq = ac->B * ac->Hq * ac->T * ac->Dh, nkv = ac->B * ac->Hkv * ac->S * ac->Dh;
        const int64_t rows = ac->B * ac->Hq * ac->T;
        float *q = rnd(nq, 500 + c, 1.0f), *k = rnd(nkv, 510 + c, 1.0f), *v = rnd(nkv, 520 + c, 1.0f);
        float *g = rnd(nq, 530 + c, 1.0f), *keep = attn_mask(ac->mask, ac->B, ac->S, 540 + c);
        float *o[2], *l[2], *dq[2], *dk[2], *dv[2], *del = attn_work(&a);
        for (int pass = 0; pass < 2; pass++) {   /* clean, then poisoned */
            if (pass == 1) attn_poison_hidden(k, v, keep, ac);
            o[pass] = zeros(nq), l[pass] = zeros(rows), dq[pass] = zeros(nq);
            dk[pass] = zeros(nkv), dv[pass] = zeros(nkv);
            empo_k_attention_forward(o[pass], l[pass], del, q, k, v, keep, &a);
            empo_k_attention_backward(dq[pass], dk[pass], dv[pass], del, g, q, k, v, o[pass], keep, l[pass], &a);
        }
        for (int64_t i = 0; i < nkv; i++)   /* hidden rows get zero gradients; compare the rest */
            if (isnan(k[i])) dk[0][i] = dv[0][i] = 0.0f;
        const size_t bq = sizeof(float) * (size_t)nq, bkv = sizeof(float) * (size_t)nkv;
        int same = !memcmp(o[0], o[1], bq) && !memcmp(dq[0], dq[1], bq) && !memcmp(dk[0], dk[1], bkv) &&
                   !memcmp(dv[0], dv[1], bkv);
        check_report(__FILE__, __LINE__, same, "attention case %d: NaN in hidden KV rows leaked into the result", c);
        float *ref_o = zeros(nq), *ref_l = zeros(rows);
        empo_ref_attention_forward(ref_o, ref_l, NULL, q, k, v, keep, &a);
        cmp("attention ref with NaN in hidden rows", c, ref_o, o[0], nq);
        float *bufs[] = {q, k, v, g, keep, del, ref_o, ref_l, o[0], o[1], l[0], l[1],
                         dq[0], dq[1], dk[0], dk[1], dv[0], dv[1]};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    }
}

/* The backward runs fused (one task per (b, KV head)) or split (dk/dv per
 * key block, then dq per query tile) depending on how many (b, KV head)
 * pairs there are per thread; both, at 1 and 2 threads, must give the same
 * bits. */
static void test_k_attention_fused_split_same(void) {
    static const attn_case cases[] = {
        {1, 4, 1, 100, 100, 32, 1, 1},   /* 1 pair: split at any thread count */
        {2, 4, 2, 70, 90, 16, 1, 2},     /* 4 pairs: fused at 1 thread, split at 2 */
        {9, 2, 1, 40, 40, 8, 0, 0},      /* 9 pairs: fused at both */
    };
    const int threads = empo_get_num_threads();
    for (int c = 0; c < 3; c++) {
        const attn_case *ac = &cases[c];
        const empo_attn_shape a = {ac->B, ac->Hq, ac->Hkv, ac->T, ac->S, ac->Dh, ac->causal, 0.25f};
        const int64_t nq = ac->B * ac->Hq * ac->T * ac->Dh, nkv = ac->B * ac->Hkv * ac->S * ac->Dh;
        const int64_t rows = ac->B * ac->Hq * ac->T;
        float *q = rnd(nq, 600 + c, 1.0f), *k = rnd(nkv, 610 + c, 1.0f), *v = rnd(nkv, 620 + c, 1.0f);
        float *g = rnd(nq, 630 + c, 1.0f), *keep = attn_mask(ac->mask, ac->B, ac->S, 640 + c);
        float *o = zeros(nq), *l = zeros(rows), *d[2][3];
        empo_set_num_threads(2);
        float *work = attn_work(&a);
        empo_k_attention_forward(o, l, work, q, k, v, keep, &a);
        for (int t = 0; t < 2; t++) {
            empo_set_num_threads(t + 1);
            d[t][0] = zeros(nq), d[t][1] = zeros(nkv), d[t][2] = zeros(nkv);
            empo_k_attention_backward(d[t][0], d[t][1], d[t][2], work, g, q, k, v, o, keep, l, &a);
        }
        const int same = !memcmp(d[0][0], d[1][0], sizeof(float) * (size_t)nq) &&
                         !memcmp(d[0][1], d[1][1], sizeof(float) * (size_t)nkv) &&
                         !memcmp(d[0][2], d[1][2], sizeof(float) * (size_t)nkv);
        check_report(__FILE__, __LINE__, same, "attention backward case %d: 1 and 2 threads differ", c);
        float *bufs[] = {q, k, v, g, keep, o, l, work, d[0][0], d[0][1], d[0][2], d[1][0], d[1][1], d[1][2]};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    }
    empo_set_num_threads(threads);
}

/* The tile product under the attention kernels, against its naive
 * version: every row/column tail, overwrite and accumulate, and A read
 * transposed through its strides. */
static void test_tile_gemm(void) {
    static const int64_t dims[][3] = {{1, 1, 1}, {4, 16, 32}, {7, 33, 5}, {32, 64, 40}, {3, 7, 64}, {64, 24, 32}};
    for (int c = 0; c < 6; c++) {
        const int64_t m = dims[c][0], n = dims[c][1], k = dims[c][2], ldc = n + 3, ldb = n + 1;
        for (int trans = 0; trans < 2; trans++) {
            float *A = rnd(m * k, 700 + c, 1.0f), *B = rnd(k * ldb, 710 + c, 1.0f);
            float *C1 = rnd(m * ldc, 720 + c, 1.0f), *C2 = malloc(sizeof(float) * (size_t)(m * ldc));
            const int64_t a_row = trans ? 1 : k, a_col = trans ? m : 1;
            for (int acc = 0; acc < 2; acc++) {
                memcpy(C2, C1, sizeof(float) * (size_t)(m * ldc));
                empo_tile_gemm(C1, ldc, A, a_row, a_col, B, ldb, m, n, k, acc);
                empo_tile_gemm_ref(C2, ldc, A, a_row, a_col, B, ldb, m, n, k, acc);
                cmp("tile_gemm", c * 4 + trans * 2 + acc, C1, C2, m * ldc);
            }
            free(A), free(B), free(C1), free(C2);
        }
    }
}

static void test_k_logprob(void) {
    static const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 1000}, {2, 151936}, {4, 300}};
    for (int c = 0; c < 5; c++) {
        const int64_t N = shapes[c][0], V = shapes[c][1];
        float *x = rnd(N * V, 150 + c, 6.0f), *u = rnd(N, 160 + c, 1.0f);
        float *gl = rnd(N, 170 + c, 1.0f), *ge = rnd(N, 180 + c, 1.0f);
        int64_t *ids = malloc(sizeof(int64_t) * (size_t)N);
        for (int64_t i = 0; i < N; i++) ids[i] = (int64_t)((u[i] + 1.0f) * 0.5f * (float)V) % V;
        if (c == 4)   /* banned tokens, the chosen one among them in row 0 */
            for (int64_t i = 0; i < N * V; i += 3) x[i] = -INFINITY;
        if (c == 4) {
            ids[0] = 0;
            for (int64_t i = 1; i < N; i++) ids[i] = ids[i] - ids[i] % 3 + 1;   /* allowed ones */
        }
        float *lp1 = zeros(N), *lp2 = zeros(N), *en1 = zeros(N), *en2 = zeros(N), *ls1 = zeros(N), *ls2 = zeros(N);
        float *d1 = zeros(N * V), *d2 = zeros(N * V);
        empo_k_logprob_entropy_forward(lp1, en1, ls1, x, ids, N, V);
        empo_ref_logprob_entropy_forward(lp2, en2, ls2, x, ids, N, V);
        if (c == 4) {
            CHECK(lp1[0] == -INFINITY && lp2[0] == -INFINITY);
            lp1[0] = lp2[0] = 0.0f;
        }
        cmp("logprob logp", c, lp1, lp2, N);
        cmp("logprob entropy", c, en1, en2, N);
        cmp("logprob lse", c, ls1, ls2, N);
        empo_k_logprob_entropy_backward(d1, gl, ge, x, ids, ls2, en2, N, V);
        empo_ref_logprob_entropy_backward(d2, gl, ge, x, ids, ls2, en2, N, V);
        cmp("logprob dlogits (both)", c, d1, d2, N * V);
        empo_k_logprob_entropy_backward(d1, NULL, ge, x, ids, ls2, en2, N, V);
        empo_ref_logprob_entropy_backward(d2, NULL, ge, x, ids, ls2, en2, N, V);
        cmp("logprob dlogits (entropy)", c, d1, d2, N * V);
        empo_k_logprob_entropy_backward(d1, gl, NULL, x, ids, ls2, NULL, N, V);
        empo_ref_logprob_entropy_backward(d2, gl, NULL, x, ids, ls2, NULL, N, V);
        cmp("logprob dlogits (logp)", c, d1, d2, N * V);
        float *bufs[] = {x, u, gl, ge, lp1, lp2, en1, en2, ls1, ls2, d1, d2};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
        free(ids);
    }
}

/* ---- helpers for the op-level tests ---- */

static float *fptr(empo_tensor *t) { return (float *)empo_tensor_data(t); }

static empo_tensor *rand_t(int ndim, const int64_t *shape, uint64_t seed, float scale) {
    empo_tensor *t = check_rand_tensor(ndim, shape, seed);
    for (int64_t i = 0, n = empo_tensor_numel(t); i < n; i++) fptr(t)[i] *= scale;
    return t;
}

/* a tensor of dtype holding the given values (converted from f64) */
static empo_tensor *vals_t(int ndim, const int64_t *shape, int dtype, const double *vals) {
    empo_tensor *t = NULL;
    empo_tensor_from_buffer(&t, ndim, shape, dtype, vals, EMPO_F64);
    return t;
}

static int shape_of(const empo_tensor *t, int64_t *shape) {
    int nd = empo_tensor_ndim(t);
    for (int d = 0; d < nd; d++) shape[d] = empo_tensor_size(t, d);
    return nd;
}

/* max relative difference of two tensors of any layout (contiguous copies) */
static double tensor_err(empo_tensor *a, empo_tensor *b) {
    empo_tensor *ac = NULL, *bc = NULL;
    if (empo_contiguous(&ac, a) != EMPO_OK || empo_contiguous(&bc, b) != EMPO_OK) return INFINITY;
    int64_t n = empo_tensor_numel(ac);
    double e = n == empo_tensor_numel(bc) ? check_rel_err(fptr(ac), fptr(bc), n) : INFINITY;
    if (!all_finite(fptr(ac), n)) e = INFINITY;
    empo_tensor_release(ac);
    empo_tensor_release(bc);
    return e;
}

/* ---- 2. backward through the ops vs central differences ---- */

typedef struct fd_case fd_case;
struct fd_case {
    const char *name;
    empo_tensor *in[3];   /* differentiable leaves (unused slots NULL) */
    empo_tensor *aux;     /* positions, key mask or ids: never differentiated */
    int64_t offset;
    double param;         /* eps, theta or scale */
    int flag;             /* causal; for logprob_entropy 1 = logp, 2 = entropy, 3 = both */
    int (*run)(const fd_case *c, empo_tensor **outs);
};

static int run_rmsnorm(const fd_case *c, empo_tensor **o) { return empo_rmsnorm(&o[0], c->in[0], c->in[1], c->param); }
static int run_swiglu(const fd_case *c, empo_tensor **o) { return empo_swiglu(&o[0], c->in[0], c->in[1]); }
static int run_rope(const fd_case *c, empo_tensor **o) {
    return empo_rope(&o[0], c->in[0], c->aux, c->offset, c->param);
}
static int run_attention(const fd_case *c, empo_tensor **o) {
    return empo_attention(&o[0], c->in[0], c->in[1], c->in[2], c->flag, c->param, c->aux);
}
static int run_logprob(const fd_case *c, empo_tensor **o) {
    return empo_logprob_entropy(c->flag & 1 ? &o[0] : NULL, c->flag & 2 ? &o[1] : NULL, c->in[0], c->aux);
}

/* sum_k sum(o[k] * w[k]) in double, straight from the outputs */
static double loss_value(const fd_case *c, empo_tensor *const *w) {
    empo_tensor *o[2] = {NULL, NULL};
    if (c->run(c, o) != EMPO_OK) return NAN;
    double L = 0.0;
    for (int k = 0; k < 2; k++) {
        if (!o[k]) continue;
        for (int64_t i = 0, n = empo_tensor_numel(o[k]); i < n; i++) L += (double)fptr(o[k])[i] * fptr(w[k])[i];
        empo_tensor_release(o[k]);
    }
    return L;
}

/* the same loss as a graph: sum(o0 * w0) [+ sum(o1 * w1)] */
static empo_tensor *loss_graph(empo_tensor *const *o, empo_tensor *const *w) {
    empo_tensor *total = NULL;
    for (int k = 0; k < 2; k++) {
        if (!o[k]) continue;
        empo_tensor *p = NULL, *s = NULL, *t = NULL;
        CHECK_OK(empo_mul(&p, o[k], w[k]));
        CHECK_OK(empo_sum(&s, p));
        empo_tensor_release(p);
        if (!total) { total = s; continue; }
        CHECK_OK(empo_add(&t, total, s));
        empo_tensor_release(total);
        empo_tensor_release(s);
        total = t;
    }
    return total;
}

/* relative error of x's accumulated gradient against central differences */
static double fd_input_err(const fd_case *c, empo_tensor *x, empo_tensor *const *w) {
    const float h = 5e-3f;
    empo_tensor *g = NULL;
    empo_tensor_grad(&g, x);
    if (!g) return INFINITY;
    const int64_t n = empo_tensor_numel(x);
    float *xv = fptr(x), *num = zeros(n);
    int prev = empo_grad_set_enabled(0);
    for (int64_t j = 0; j < n; j++) {
        const float x0 = xv[j];
        xv[j] = x0 + h;
        const double up = (double)xv[j] - x0, Lp = loss_value(c, w);
        xv[j] = x0 - h;
        const double down = x0 - (double)xv[j], Lm = loss_value(c, w);
        xv[j] = x0;
        num[j] = (float)((Lp - Lm) / (up + down));
    }
    empo_grad_set_enabled(prev);
    double e = all_finite(fptr(g), n) ? check_rel_err(fptr(g), num, n) : INFINITY;
    free(num);
    empo_tensor_release(g);
    return e;
}

static void fd_check(const fd_case *c, int reference) {
    empo_tensor *o[2] = {NULL, NULL}, *w[2] = {NULL, NULL};
    for (int i = 0; i < 3; i++)
        if (c->in[i]) {
            empo_tensor_set_requires_grad(c->in[i], 1);
            empo_tensor_set_grad(c->in[i], NULL);
        }
    int st = c->run(c, o);
    check_report(__FILE__, __LINE__, st == EMPO_OK, "%s: %s", c->name, empo_last_error());
    if (st != EMPO_OK) return;
    for (int k = 0; k < 2; k++) {
        int64_t shape[8];
        if (o[k]) w[k] = check_rand_tensor(shape_of(o[k], shape), shape, 900 + (uint64_t)k);
    }
    empo_tensor *loss = loss_graph(o, w);
    CHECK_OK(empo_backward(loss, NULL, 0));
    for (int i = 0; i < 3; i++) {
        if (!c->in[i]) continue;
        double e = fd_input_err(c, c->in[i], w);
        printf("  fd %-4s %-34s input %d: rel err %.2e\n", reference ? "ref" : "fast", c->name, i, e);
        check_report(__FILE__, __LINE__, e <= FD_TOL, "%s (%s kernels): d loss / d input %d: rel err %.3g", c->name,
                     reference ? "reference" : "fast", i, e);
    }
    empo_tensor *objs[] = {o[0], o[1], w[0], w[1], loss};
    for (size_t i = 0; i < 5; i++) empo_tensor_release(objs[i]);
}

static int make_fd_cases(fd_case *cs) {
    int n = 0;
    const int64_t sx[3] = {2, 3, 5}, sw[1] = {5}, sg[2] = {3, 7};
    cs[n++] = (fd_case){"rmsnorm", {rand_t(3, sx, 201, 1.5f), rand_t(1, sw, 202, 1.0f)}, NULL, 0, 1e-5, 0, run_rmsnorm};
    cs[n++] = (fd_case){"swiglu", {rand_t(2, sg, 203, 3.0f), rand_t(2, sg, 204, 1.0f)}, NULL, 0, 0, 0, run_swiglu};

    const int64_t sr1[4] = {2, 3, 4, 6}, sp1[2] = {2, 4}, sr2[4] = {1, 2, 3, 4}, sr3[4] = {2, 1, 3, 4}, sp3[1] = {3};
    const double p1[8] = {0, 1, 2, 3, 7, 20, 33, 50}, p3[3] = {4, 9, 2};
    cs[n++] = (fd_case){"rope positions [B, T]", {rand_t(4, sr1, 205, 1.0f)}, vals_t(2, sp1, EMPO_I64, p1), 0, 1e4, 0,
                        run_rope};
    cs[n++] = (fd_case){"rope offset", {rand_t(4, sr2, 206, 1.0f)}, NULL, 5, 100.0, 0, run_rope};
    cs[n++] = (fd_case){"rope positions [T] i32", {rand_t(4, sr3, 207, 1.0f)}, vals_t(1, sp3, EMPO_I32, p3), 0, 1e4,
                        0, run_rope};

    const int64_t q1[4] = {2, 4, 3, 6}, k1[4] = {2, 2, 5, 6}, m1[2] = {2, 5};
    const double mv1[10] = {1, 1, 0, 1, 1, 0, 1, 1, 1, 1};
    cs[n++] = (fd_case){"attention causal gqa2 cache mask", {rand_t(4, q1, 208, 1.0f), rand_t(4, k1, 209, 1.0f),
                        rand_t(4, k1, 210, 1.0f)}, vals_t(2, m1, EMPO_U8, mv1), 0, 0.0, 1, run_attention};
    const int64_t q2[4] = {1, 4, 4, 5}, k2[4] = {1, 1, 6, 5};
    cs[n++] = (fd_case){"attention full gqa4 scale", {rand_t(4, q2, 211, 1.0f), rand_t(4, k2, 212, 1.0f),
                        rand_t(4, k2, 213, 1.0f)}, NULL, 0, 0.3, 0, run_attention};
    const int64_t q3[4] = {2, 2, 1, 4}, k3[4] = {2, 1, 7, 4}, m3[2] = {2, 7};
    const double mv3[14] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0};
    cs[n++] = (fd_case){"attention decode T=1 mask i64", {rand_t(4, q3, 214, 1.0f), rand_t(4, k3, 215, 1.0f),
                        rand_t(4, k3, 216, 1.0f)}, vals_t(2, m3, EMPO_I64, mv3), 0, 0.0, 1, run_attention};
    const int64_t q4[4] = {1, 2, 3, 4}, k4[4] = {1, 1, 3, 4}, m4[2] = {1, 3};
    const double mv4[3] = {0, 1, 1};
    cs[n++] = (fd_case){"attention empty row mask f32", {rand_t(4, q4, 217, 1.0f), rand_t(4, k4, 218, 1.0f),
                        rand_t(4, k4, 219, 1.0f)}, vals_t(2, m4, EMPO_F32, mv4), 0, 0.0, 1, run_attention};

    const int64_t sl[2] = {5, 7}, si[1] = {5}, sl3[3] = {2, 3, 7}, si3[2] = {2, 3};
    const double ids[5] = {0, 6, 3, 3, 1}, ids3[6] = {2, 0, 6, 5, 5, 1};
    const char *names[3] = {"logprob_entropy logp", "logprob_entropy entropy", "logprob_entropy both"};
    for (int f = 1; f <= 3; f++)
        cs[n++] = (fd_case){names[f - 1], {rand_t(2, sl, 220 + (uint64_t)f, 3.0f)}, vals_t(1, si, EMPO_I64, ids), 0, 0,
                            f, run_logprob};
    cs[n++] = (fd_case){"logprob_entropy [2x3x7] i32", {rand_t(3, sl3, 224, 3.0f)}, vals_t(2, si3, EMPO_I32, ids3), 0,
                        0, 3, run_logprob};
    return n;
}

static void test_fd(void) {
    fd_case cs[32];
    int n = make_fd_cases(cs);
    for (int reference = 0; reference <= 1; reference++) {
        int prev = empo_set_reference_kernels(reference);
        for (int i = 0; i < n; i++) fd_check(&cs[i], reference);
        empo_set_reference_kernels(prev);
    }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++) empo_tensor_release(cs[i].in[k]);
        empo_tensor_release(cs[i].aux);
    }
}

/* ---- 3. semantics ---- */

/* The last two queries against the whole cache equal the last two rows of
 * full causal attention (S - T = 4 cached tokens); the query is a strided
 * view. */
static void test_attention_kv_cache(void) {
    const int64_t sq[4] = {1, 4, 6, 8}, sk[4] = {1, 2, 6, 8};
    empo_tensor *q = rand_t(4, sq, 301, 1.5f), *k = rand_t(4, sk, 302, 1.5f), *v = rand_t(4, sk, 303, 1.0f);
    empo_tensor *full = NULL, *qt = NULL, *tail = NULL, *want = NULL;
    CHECK_OK(empo_attention(&full, q, k, v, 1, 0.0, NULL));
    CHECK_OK(empo_narrow(&qt, q, 2, 4, 2));
    CHECK(!empo_tensor_is_contiguous(qt));
    CHECK_OK(empo_attention(&tail, qt, k, v, 1, 0.0, NULL));
    CHECK_OK(empo_narrow(&want, full, 2, 4, 2));
    double e = tensor_err(tail, want);
    check_report(__FILE__, __LINE__, e <= 1e-6, "attention with a KV cache: rel err %.3g", e);
    empo_tensor *objs[] = {q, k, v, full, qt, tail, want};
    for (size_t i = 0; i < 7; i++) empo_tensor_release(objs[i]);
}

/* kv head j repeated to query heads 2j, 2j+1 (as HF's repeat_kv) */
static empo_tensor *repeat_heads(empo_tensor *kv, int64_t rep) {
    int64_t s[4];
    shape_of(kv, s);
    const int64_t big[4] = {s[0], s[1] * rep, s[2], s[3]}, row = s[2] * s[3];
    empo_tensor *r = NULL;
    empo_tensor_empty(&r, 4, big, EMPO_F32);
    for (int64_t b = 0; b < s[0]; b++)
        for (int64_t h = 0; h < big[1]; h++) {
            const float *src = fptr(kv) + (b * s[1] + h / rep) * row;
            memcpy(fptr(r) + (b * big[1] + h) * row, src, sizeof(float) * (size_t)row);
        }
    empo_tensor_set_requires_grad(r, 1);
    return r;
}

/* GQA equals plain attention on repeated KV heads, gradients included
 * (the GQA dk of a head is the sum over the query heads that share it). */
static void test_attention_gqa_repeat(void) {
    const int64_t sq[4] = {2, 4, 3, 4}, sk[4] = {2, 2, 5, 4}, sm[2] = {2, 5};
    const double mv[10] = {1, 0, 1, 1, 1, 1, 1, 1, 0, 1};
    empo_tensor *q = rand_t(4, sq, 311, 1.5f), *k = rand_t(4, sk, 312, 1.5f), *v = rand_t(4, sk, 313, 1.0f);
    empo_tensor *mask = vals_t(2, sm, EMPO_U8, mv), *kr = repeat_heads(k, 2), *vr = repeat_heads(v, 2);
    empo_tensor_set_requires_grad(k, 1);
    empo_tensor *o1 = NULL, *o2 = NULL, *l1 = NULL, *l2 = NULL, *gk = NULL, *gkr = NULL, *gsum = NULL;
    CHECK_OK(empo_attention(&o1, q, k, v, 1, 0.0, mask));
    CHECK_OK(empo_attention(&o2, q, kr, vr, 1, 0.0, mask));
    double e = tensor_err(o1, o2);
    check_report(__FILE__, __LINE__, e <= 1e-6, "GQA vs repeated heads: rel err %.3g", e);
    CHECK_OK(empo_sum(&l1, o1));
    CHECK_OK(empo_sum(&l2, o2));
    CHECK_OK(empo_backward(l1, NULL, 0));
    CHECK_OK(empo_backward(l2, NULL, 0));
    empo_tensor_grad(&gk, k);
    empo_tensor_grad(&gkr, kr);
    if (gk && gkr) {   /* sum the repeated heads' gradients pairwise */
        const int64_t s5[5] = {2, 2, 2, 5, 4};
        empo_tensor *g5 = NULL;
        CHECK_OK(empo_view(&g5, gkr, 5, s5));
        CHECK_OK(empo_sum_dim(&gsum, g5, 2, 0));
        e = tensor_err(gk, gsum);
        check_report(__FILE__, __LINE__, e <= 1e-5, "GQA dk vs repeated heads: rel err %.3g", e);
        empo_tensor_release(g5);
    } else {
        CHECK(gk && gkr);
    }
    empo_tensor *objs[] = {q, k, v, mask, kr, vr, o1, o2, l1, l2, gk, gkr, gsum};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

/* A batch row whose keys are all masked out gives zeros and zero, finite
 * gradients through the op. */
static void test_attention_empty_rows(void) {
    const int64_t sq[4] = {2, 2, 3, 4}, sk[4] = {2, 1, 3, 4}, sm[2] = {2, 3};
    const double mv[6] = {0, 0, 0, 1, 1, 1};
    empo_tensor *q = rand_t(4, sq, 321, 1.0f), *k = rand_t(4, sk, 322, 1.0f), *v = rand_t(4, sk, 323, 1.0f);
    empo_tensor *mask = vals_t(2, sm, EMPO_I32, mv), *o = NULL, *l = NULL, *gq = NULL;
    empo_tensor_set_requires_grad(q, 1);
    CHECK_OK(empo_attention(&o, q, k, v, 0, 0.0, mask));
    CHECK_OK(empo_sum(&l, o));
    CHECK_OK(empo_backward(l, NULL, 0));
    empo_tensor_grad(&gq, q);
    int ok = gq != NULL;
    for (int64_t i = 0; ok && i < 2 * 3 * 4; i++) ok = fptr(o)[i] == 0.0f && fptr(gq)[i] == 0.0f;
    CHECK(ok && all_finite(fptr(o), 48) && all_finite(fptr(gq), 48));
    empo_tensor *objs[] = {q, k, v, mask, o, l, gq};
    for (size_t i = 0; i < 7; i++) empo_tensor_release(objs[i]);
}

/* position 0 is the identity; [T] positions, [B, T] positions and an
 * offset give the same rotation */
static void test_rope_identities(void) {
    const int64_t sx[4] = {2, 2, 3, 8}, sp[1] = {3}, sbt[2] = {2, 3};
    const double zero[6] = {0, 0, 0, 0, 0, 0}, p[3] = {5, 6, 7}, pbt[6] = {5, 6, 7, 5, 6, 7};
    empo_tensor *x = rand_t(4, sx, 331, 1.0f), *z = vals_t(2, sbt, EMPO_I64, zero);
    empo_tensor *pt = vals_t(1, sp, EMPO_I64, p), *pb = vals_t(2, sbt, EMPO_I32, pbt);
    empo_tensor *y0 = NULL, *y1 = NULL, *y2 = NULL, *y3 = NULL;
    CHECK_OK(empo_rope(&y0, x, z, 0, 1e4));
    CHECK_OK(empo_rope(&y1, x, pt, 0, 1e4));
    CHECK_OK(empo_rope(&y2, x, pb, 0, 1e4));
    CHECK_OK(empo_rope(&y3, x, NULL, 5, 1e4));
    CHECK(tensor_err(y0, x) == 0.0);
    CHECK(tensor_err(y1, y2) == 0.0 && tensor_err(y1, y3) == 0.0);
    /* one hand-checked value: pair 0 at position 5 turns by 5 radians */
    double c5 = cos(5.0), s5 = sin(5.0), a = fptr(x)[0], b = fptr(x)[4];
    CHECK_NEAR(fptr(y1)[0], a * c5 - b * s5, 1e-6);
    CHECK_NEAR(fptr(y1)[4], b * c5 + a * s5, 1e-6);
    empo_tensor *objs[] = {x, z, pt, pb, y0, y1, y2, y3};
    for (size_t i = 0; i < 8; i++) empo_tensor_release(objs[i]);
}

static void test_logprob_values(void) {
    const int64_t sl[2] = {3, 10}, si[1] = {3};
    const double ids[3] = {0, 4, 9};
    empo_tensor *x = NULL, *id = vals_t(1, si, EMPO_I64, ids), *lp = NULL, *en = NULL;
    empo_tensor_zeros(&x, 2, sl, EMPO_F32);
    CHECK_OK(empo_logprob_entropy(&lp, &en, x, id));
    for (int i = 0; lp && en && i < 3; i++) {
        CHECK_NEAR(fptr(lp)[i], -log(10.0), 1e-6);
        CHECK_NEAR(fptr(en)[i], log(10.0), 1e-6);
    }
    /* banned tokens: the rest share the mass, entropy stays finite */
    for (int j = 5; j < 10; j++) fptr(x)[j] = -INFINITY;
    empo_tensor_release(lp);
    empo_tensor_release(en);
    lp = en = NULL;
    empo_tensor_set_requires_grad(x, 1);
    CHECK_OK(empo_logprob_entropy(&lp, &en, x, id));
    empo_tensor *l = NULL, *g = NULL;
    if (lp && en) {
        CHECK_NEAR(fptr(lp)[0], -log(5.0), 1e-6);
        CHECK_NEAR(fptr(en)[0], log(5.0), 1e-6);
        CHECK_OK(empo_sum(&l, en));
        CHECK_OK(empo_backward(l, NULL, 0));
        empo_tensor_grad(&g, x);
        CHECK(g && all_finite(fptr(g), 30) && fptr(g)[7] == 0.0f);
    }
    empo_tensor *objs[] = {x, id, lp, en, l, g};
    for (size_t i = 0; i < 6; i++) empo_tensor_release(objs[i]);
}

/* strided inputs are made contiguous, not misread */
static void test_strided_inputs(void) {
    const int64_t s[2] = {5, 4}, sw[1] = {5};
    empo_tensor *x = rand_t(2, s, 341, 1.0f), *w = rand_t(1, sw, 342, 1.0f), *xt = NULL, *xc = NULL;
    empo_tensor *y1 = NULL, *y2 = NULL, *g1 = NULL, *g2 = NULL;
    CHECK_OK(empo_transpose(&xt, x, 0, 1));   /* [4 x 5], strided */
    CHECK_OK(empo_clone(&xc, xt));
    CHECK_OK(empo_rmsnorm(&y1, xt, w, 1e-6));
    CHECK_OK(empo_rmsnorm(&y2, xc, w, 1e-6));
    CHECK(tensor_err(y1, y2) == 0.0);
    CHECK_OK(empo_swiglu(&g1, xt, y1));
    CHECK_OK(empo_swiglu(&g2, xc, y2));
    CHECK(tensor_err(g1, g2) == 0.0);
    empo_tensor *objs[] = {x, w, xt, xc, y1, y2, g1, g2};
    for (size_t i = 0; i < 8; i++) empo_tensor_release(objs[i]);
}

/* ---- 4. errors ---- */

static void test_errors_norm_rope(void) {
    const int64_t s24[2] = {2, 4}, s3[1] = {3}, s4[1] = {4}, s42[2] = {4, 2};
    const int64_t s3d[3] = {2, 3, 4}, sodd[4] = {1, 1, 2, 5}, sx[4] = {1, 2, 3, 4}, sp[1] = {2};
    empo_tensor *x = rand_t(2, s24, 401, 1.0f), *w3 = rand_t(1, s3, 402, 1.0f), *w4 = rand_t(1, s4, 403, 1.0f);
    empo_tensor *xi = NULL, *x42 = rand_t(2, s42, 404, 1.0f), *x3 = rand_t(3, s3d, 405, 1.0f);
    empo_tensor *xodd = rand_t(4, sodd, 406, 1.0f), *x4 = rand_t(4, sx, 407, 1.0f), *pf = rand_t(1, sp, 408, 1.0f);
    empo_tensor *p2 = NULL, *y = NULL;
    empo_tensor_zeros(&xi, 2, s24, EMPO_I32);
    empo_tensor_zeros(&p2, 1, sp, EMPO_I64);
    CHECK_FAIL(empo_rmsnorm(&y, x, w3, 1e-6), EMPO_E_SHAPE, "rmsnorm: x [2 x 4]");
    CHECK_FAIL(empo_rmsnorm(&y, xi, w4, 1e-6), EMPO_E_DTYPE, "rmsnorm: x");
    CHECK_FAIL(empo_rmsnorm(&y, x, w4, -1.0), EMPO_E_ARG, "rmsnorm: eps");
    CHECK_FAIL(empo_rmsnorm(&y, NULL, w4, 1e-6), EMPO_E_ARG, "rmsnorm");
    CHECK_FAIL(empo_swiglu(&y, x, x42), EMPO_E_SHAPE, "swiglu: gate [2 x 4]");
    CHECK_FAIL(empo_swiglu(&y, x, xi), EMPO_E_DTYPE, "swiglu: up");
    CHECK_FAIL(empo_rope(&y, x3, NULL, 0, 1e4), EMPO_E_SHAPE, "rope: x [2 x 3 x 4]");
    CHECK_FAIL(empo_rope(&y, xodd, NULL, 0, 1e4), EMPO_E_SHAPE, "must be even");
    CHECK_FAIL(empo_rope(&y, x4, p2, 0, 1e4), EMPO_E_SHAPE, "rope: x [1 x 2 x 3 x 4]");
    CHECK_FAIL(empo_rope(&y, x4, pf, 0, 1e4), EMPO_E_DTYPE, "rope: positions");
    CHECK_FAIL(empo_rope(&y, x4, NULL, 0, 0.0), EMPO_E_ARG, "rope: theta");
    CHECK(y == NULL);   /* a failed op leaves its output alone */
    empo_tensor *objs[] = {x, w3, w4, xi, x42, x3, xodd, x4, pf, p2};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

static void test_errors_attention(void) {
    const int64_t sq[4] = {2, 4, 5, 8}, sk3[4] = {2, 3, 5, 8}, sk[4] = {2, 2, 5, 8}, sk7[4] = {2, 2, 5, 7};
    const int64_t sb[4] = {1, 2, 5, 8}, sshort[4] = {2, 2, 4, 8}, sm[2] = {2, 4}, sm5[2] = {2, 5};
    empo_tensor *q = rand_t(4, sq, 411, 1.0f), *k3 = rand_t(4, sk3, 412, 1.0f), *k = rand_t(4, sk, 413, 1.0f);
    empo_tensor *k7 = rand_t(4, sk7, 414, 1.0f), *kb = rand_t(4, sb, 415, 1.0f), *ks = rand_t(4, sshort, 416, 1.0f);
    empo_tensor *m = NULL, *m64 = NULL, *qi = NULL, *y = NULL;
    empo_tensor_zeros(&m, 2, sm, EMPO_U8);
    empo_tensor_zeros(&m64, 2, sm5, EMPO_F64);
    empo_tensor_zeros(&qi, 4, sq, EMPO_I64);
    CHECK_FAIL(empo_attention(&y, q, k3, k3, 1, 0, NULL), EMPO_E_SHAPE, "heads 4 not a multiple of kv heads 3");
    CHECK_FAIL(empo_attention(&y, q, k3, k3, 1, 0, NULL), EMPO_E_SHAPE, "attention: q [2 x 4 x 5 x 8]");
    CHECK_FAIL(empo_attention(&y, q, k, k3, 1, 0, NULL), EMPO_E_SHAPE, "shapes must be equal");
    CHECK_FAIL(empo_attention(&y, q, k7, k7, 1, 0, NULL), EMPO_E_SHAPE, "head dims differ");
    CHECK_FAIL(empo_attention(&y, q, kb, kb, 1, 0, NULL), EMPO_E_SHAPE, "batch sizes differ");
    CHECK_FAIL(empo_attention(&y, q, ks, ks, 1, 0, NULL), EMPO_E_SHAPE, "S 4 < T 5");
    CHECK_FAIL(empo_attention(&y, q, k, k, 1, 0, m), EMPO_E_SHAPE, "attention: key_mask [2 x 4]");
    CHECK_FAIL(empo_attention(&y, q, k, k, 1, 0, m64), EMPO_E_DTYPE, "attention: key_mask");
    CHECK_FAIL(empo_attention(&y, qi, k, k, 1, 0, NULL), EMPO_E_DTYPE, "attention: q");
    CHECK_FAIL(empo_attention(&y, q, k, NULL, 1, 0, NULL), EMPO_E_ARG, "attention: v");
    CHECK(y == NULL);
    CHECK_OK(empo_attention(&y, q, ks, ks, 0, 0, NULL));   /* not causal: S < T is fine */
    empo_tensor *objs[] = {q, k3, k, k7, kb, ks, m, m64, qi, y};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

static void test_errors_logprob(void) {
    const int64_t sl[2] = {2, 5}, si[1] = {2}, s3[1] = {3};
    const double bad_hi[2] = {1, 5}, bad_lo[2] = {-1, 0}, ok[2] = {1, 4}, three[3] = {0, 1, 2};
    empo_tensor *x = rand_t(2, sl, 421, 1.0f), *hi = vals_t(1, si, EMPO_I64, bad_hi);
    empo_tensor *lo = vals_t(1, si, EMPO_I32, bad_lo), *good = vals_t(1, si, EMPO_I64, ok);
    empo_tensor *ids3 = vals_t(1, s3, EMPO_I64, three), *idf = rand_t(1, si, 422, 1.0f);
    empo_tensor *lp = NULL, *en = NULL;
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, hi), EMPO_E_INDEX, "logprob_entropy: ids [2] i64: element 1 is 5");
    CHECK_FAIL(empo_logprob_entropy(&lp, NULL, x, lo), EMPO_E_INDEX, "out of range [0, 5)");
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, ids3), EMPO_E_SHAPE, "logprob_entropy: logits [2 x 5]");
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, idf), EMPO_E_DTYPE, "logprob_entropy: ids");
    CHECK_FAIL(empo_logprob_entropy(NULL, NULL, x, good), EMPO_E_ARG, "logprob_entropy");
    fptr(x)[7] = NAN;
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, good), EMPO_E_NUMERIC, "row 1");
    for (int j = 0; j < 5; j++) fptr(x)[j] = -INFINITY;
    CHECK_FAIL(empo_logprob_entropy(&lp, &en, x, good), EMPO_E_NUMERIC, "row 0");
    CHECK(lp == NULL && en == NULL);
    empo_tensor *objs[] = {x, hi, lo, good, ids3, idf};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) empo_tensor_release(objs[i]);
}

int main(void) {
    test_k_rmsnorm();
    test_k_swiglu();
    test_k_rope();
    test_k_attention();
    test_k_attention_hidden_nan();
    test_k_attention_fused_split_same();
    test_tile_gemm();
    test_k_logprob();
    printf("  kernels: worst fast-vs-reference rel err %.2e (tolerance %.0e)\n", worst_kernel_err, KERNEL_TOL);
    test_fd();
    test_attention_kv_cache();
    test_attention_gqa_repeat();
    test_attention_empty_rows();
    test_rope_identities();
    test_logprob_values();
    test_strided_inputs();
    test_errors_norm_rope();
    test_errors_attention();
    test_errors_logprob();
    CHECK(empo_live_tensors() == 0);
    return check_finish("test_fused");
}
