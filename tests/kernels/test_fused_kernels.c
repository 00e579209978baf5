/* test_fused_kernels.c — the fused transformer kernels (kernels/fused.h)
 * on raw arrays: fast (kernels/cpu) against the naive references
 * (kernels/ref) for RMSNorm, SwiGLU, rotary embedding, grouped-query
 * attention (and its tile products), token log-prob + entropy and the
 * chunked LM head over it (every chunk-boundary case): odd
 * sizes, GQA ratios 1/2/4, T = 1 decode with S > T, key masks (including
 * rows that see no key), forward and backward, relative error <= 1e-5;
 * NaN in masked KV slots never leaks. The ops over these kernels are
 * tests/ops/test_fused.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/fused.h"
#include "kernels/tile_gemm.h"

#define KERNEL_TOL 1e-5

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
                empo_ref_tile_gemm(C2, ldc, A, a_row, a_col, B, ldb, m, n, k, acc);
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

/* the chunked head against the reference's rows in double: chunk 1, a
 * ragged last chunk, chunk = rows and chunk > rows, a padded weight (V <
 * its rows), dW accumulated onto what it held */
static void test_k_head_logprob(void) {
    static const int64_t cases[][5] = {   /* N, D, rows of W, V, chunk */
        {1, 4, 5, 5, 1}, {7, 16, 50, 50, 1}, {7, 16, 50, 50, 3}, {7, 16, 50, 50, 7}, {7, 16, 50, 50, 100},
        {9, 32, 300, 271, 4}, {33, 64, 1000, 1000, 8}};
    const int n_cases = (int)(sizeof cases / sizeof *cases);
    for (int c = 0; c < n_cases; c++) {
        const int64_t N = cases[c][0], D = cases[c][1], R = cases[c][2], V = cases[c][3], chunk = cases[c][4];
        const float scale = 1.0f / 0.7f;
        float *h = rnd(N * D, 300 + c, 1.0f), *W = rnd(R * D, 310 + c, 1.0f), *u = rnd(N, 320 + c, 1.0f);
        float *gl = rnd(N, 330 + c, 1.0f), *ge = rnd(N, 340 + c, 1.0f), *work = zeros(chunk * V);
        int64_t *ids = malloc(sizeof(int64_t) * (size_t)N);
        for (int64_t i = 0; i < N; i++) ids[i] = (int64_t)((u[i] + 1.0f) * 0.5f * (float)V) % V;
        float *lp1 = zeros(N), *lp2 = zeros(N), *en1 = zeros(N), *en2 = zeros(N), *ls1 = zeros(N), *ls2 = zeros(N);
        empo_k_head_logprob_forward(lp1, en1, ls1, h, W, ids, N, D, V, scale, chunk, work);
        empo_ref_head_logprob_forward(lp2, en2, ls2, h, W, ids, N, D, V, scale, 0, NULL);
        cmp("head logp", c, lp1, lp2, N);
        cmp("head entropy", c, en1, en2, N);
        cmp("head lse", c, ls1, ls2, N);
        const float *gls[3] = {gl, NULL, gl}, *ges[3] = {ge, ge, NULL};
        for (int g = 0; g < 3; g++) {
            float *dh1 = zeros(N * D), *dh2 = zeros(N * D), *dW1 = rnd(R * D, 350 + c, 1.0f), *dW2 = rnd(R * D, 350 + c, 1.0f);
            empo_k_head_logprob_backward(dh1, dW1, gls[g], ges[g], h, W, ids, ls2, ges[g] ? en2 : NULL, N, D, V, scale,
                                         chunk, work);
            empo_ref_head_logprob_backward(dh2, dW2, gls[g], ges[g], h, W, ids, ls2, ges[g] ? en2 : NULL, N, D, V,
                                           scale, 0, NULL);
            cmp(g == 0 ? "head dh (both)" : g == 1 ? "head dh (entropy)" : "head dh (logp)", c, dh1, dh2, N * D);
            cmp(g == 0 ? "head dW (both)" : g == 1 ? "head dW (entropy)" : "head dW (logp)", c, dW1, dW2, R * D);
            free(dh1), free(dh2), free(dW1), free(dW2);
        }
        float *bufs[] = {h, W, u, gl, ge, work, lp1, lp2, en1, en2, ls1, ls2};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
        free(ids);
    }
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
    test_k_head_logprob();
    printf("  kernels: worst fast-vs-reference rel err %.2e (tolerance %.0e)\n", worst_kernel_err, KERNEL_TOL);
    return check_finish("test_fused_kernels");
}
