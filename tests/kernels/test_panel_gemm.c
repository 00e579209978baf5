/* test_panel_gemm.c — the decode step's products (kernels/panel_gemm.h):
 * fast tiles vs the double-precision reference over every row, column and
 * depth tail, overwrite / accumulate, with and without bias, SwiGLU's
 * paired rows; the panel layout itself; and the property the sampling
 * engine relies on: a row's results are the same bits whatever the number
 * of rows beside it and however the columns are split. The bf16-weight
 * variants: the bits of the f32 tiles on the rounded weights, and the
 * reference's values, at even and odd depths, both below and past the
 * depth widened on the stack. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/panel_gemm.h"

#define TOL 1e-5

static float *rnd(int64_t n, uint64_t seed) {
    float *a = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    check_fill_uniform(a, n, seed);
    return a;
}

static float *packed(const float *x, int64_t M, int64_t K) {
    float *xp = malloc(sizeof(float) * (size_t)(empo_panels(M) * EMPO_PANEL * K + 1));
    empo_k_panel_pack(xp, x, M, K, K, 0, empo_panels(M));
    return xp;
}

static void test_pack(void) {
    /* rows in whole groups of 8 and not, depths in whole 8 x 8 blocks and not */
    const int64_t Ms[] = {19, 8, 16, 33, 1}, Ks[] = {5, 8, 21, 64};
    int ok = 1;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 4; b++) {
            const int64_t M = Ms[a], K = Ks[b];
            float *x = rnd(M * K, 1), *xp = packed(x, M, K);
            for (int64_t p = 0; p < empo_panels(M); p++)
                for (int64_t k = 0; k < K; k++)
                    for (int64_t i = 0; i < EMPO_PANEL; i++) {
                        const int64_t m = p * EMPO_PANEL + i;
                        ok &= xp[(p * K + k) * EMPO_PANEL + i] == (m < M ? x[m * K + k] : 0.0f);
                    }
            free(x), free(xp);
        }
    check_report(__FILE__, __LINE__, ok, "panel layout: [panel][k][lane], zero lanes beyond M");
}

static const int64_t shapes[][3] = {{1, 1, 1}, {16, 6, 32}, {5, 13, 7}, {17, 40, 33}, {37, 7, 128}, {64, 100, 96},
                                    {3, 200, 17}};

static void test_linear(void) {
    double worst = 0.0;
    for (int c = 0; c < 7; c++) {
        const int64_t M = shapes[c][0], N = shapes[c][1], K = shapes[c][2], ldy = N + 2;
        float *x = rnd(M * K, 10 + c), *w = rnd(N * K, 20 + c), *b = rnd(N, 30 + c), *xp = packed(x, M, K);
        float *y0 = rnd(M * ldy, 40 + c), *y1 = malloc(sizeof(float) * (size_t)(M * ldy)),
              *y2 = malloc(sizeof(float) * (size_t)(M * ldy));
        for (int mode = 0; mode < 4; mode++) {
            const int acc = mode & 1;
            const float *bias = mode & 2 ? b : NULL;
            memcpy(y1, y0, sizeof(float) * (size_t)(M * ldy));
            memcpy(y2, y0, sizeof(float) * (size_t)(M * ldy));
            /* columns in two ranges split at a strip boundary, as two threads would */
            const int64_t mid = N / 2 / EMPO_PANEL_STRIP * EMPO_PANEL_STRIP;
            empo_k_panel_linear(y1, ldy, acc, xp, M, K, w, bias, 0, mid);
            empo_k_panel_linear(y1, ldy, acc, xp, M, K, w, bias, mid, N);
            empo_ref_panel_linear(y2, ldy, acc, xp, M, K, w, bias, 0, N);
            const double e = check_rel_err(y1, y2, M * ldy);   /* the padding columns too: untouched */
            worst = e > worst ? e : worst;
            check_report(__FILE__, __LINE__, e <= TOL, "panel_linear %lldx%lldx%lld mode %d: rel err %.3g",
                         (long long)M, (long long)N, (long long)K, mode, e);
        }
        free(x), free(w), free(b), free(xp), free(y0), free(y1), free(y2);
    }
    printf("  panel_linear: worst rel err vs reference %.2e\n", worst);
}

static void test_swiglu(void) {
    for (int c = 0; c < 7; c++) {
        const int64_t M = shapes[c][0], F = shapes[c][1], K = shapes[c][2], n = empo_panels(M) * EMPO_PANEL * F;
        float *x = rnd(M * K, 50 + c), *wg = rnd(F * K, 60 + c), *wu = rnd(F * K, 70 + c), *xp = packed(x, M, K);
        float *s1 = calloc((size_t)n, sizeof(float)), *s2 = calloc((size_t)n, sizeof(float));
        const int64_t mid = F / 2 / EMPO_PANEL_PAIRS * EMPO_PANEL_PAIRS;
        empo_k_panel_swiglu(s1, F, xp, M, K, wg, wu, 0, mid);
        empo_k_panel_swiglu(s1, F, xp, M, K, wg, wu, mid, F);
        empo_ref_panel_swiglu(s2, F, xp, M, K, wg, wu, 0, F);
        const double e = check_rel_err(s1, s2, n);
        check_report(__FILE__, __LINE__, e <= TOL, "panel_swiglu %lldx%lldx%lld: rel err %.3g", (long long)M,
                     (long long)F, (long long)K, e);
        free(x), free(wg), free(wu), free(xp), free(s1), free(s2);
    }
}

/* Row 2 of a 3-row batch and of a 40-row batch (the same x there), columns
 * split differently: the same bits. */
/* the product written as panels: vs the reference over every lane (those
 * beyond M too) and the padding columns (untouched), and the same bits as
 * the row layout's */
static void test_linear_panels(void) {
    for (int c = 0; c < 7; c++) {
        const int64_t M = shapes[c][0], N = shapes[c][1], K = shapes[c][2], ldp = (N + 3) * EMPO_PANEL;
        const int64_t size = empo_panels(M) * ldp;
        float *x = rnd(M * K, 50 + c), *w = rnd(N * K, 60 + c), *b = rnd(N, 70 + c), *xp = packed(x, M, K);
        float *y0 = rnd(size, 90 + c), *y1 = malloc(sizeof(float) * (size_t)size),
              *y2 = malloc(sizeof(float) * (size_t)size), *rows = rnd(M * N, 100 + c);
        for (int mode = 0; mode < 4; mode++) {
            const int acc = mode & 1;
            const float *bias = mode & 2 ? b : NULL;
            memcpy(y1, y0, sizeof(float) * (size_t)size);
            memcpy(y2, y0, sizeof(float) * (size_t)size);
            const int64_t mid = N / 2 / EMPO_PANEL_STRIP * EMPO_PANEL_STRIP;
            empo_k_panel_linear_panels(y1, ldp, acc, xp, M, K, w, bias, 0, mid);
            empo_k_panel_linear_panels(y1, ldp, acc, xp, M, K, w, bias, mid, N);
            empo_ref_panel_linear_panels(y2, ldp, acc, xp, M, K, w, bias, 0, N);
            const double e = check_rel_err(y1, y2, size);
            check_report(__FILE__, __LINE__, e <= TOL, "panel_linear_panels %lldx%lldx%lld mode %d: rel err %.3g",
                         (long long)M, (long long)N, (long long)K, mode, e);
            for (int64_t m = 0; m < M; m++)   /* rows start from the panels' old values */
                for (int64_t n = 0; n < N; n++)
                    rows[m * N + n] = y0[m / EMPO_PANEL * ldp + n * EMPO_PANEL + m % EMPO_PANEL];
            empo_k_panel_linear(rows, N, acc, xp, M, K, w, bias, 0, N);
            int same = 1;
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++)
                    same &= rows[m * N + n] == y1[m / EMPO_PANEL * ldp + n * EMPO_PANEL + m % EMPO_PANEL];
            check_report(__FILE__, __LINE__, same, "panel_linear_panels %lldx%lldx%lld mode %d: rows' bits",
                         (long long)M, (long long)N, (long long)K, mode);
        }
        free(x), free(w), free(b), free(xp), free(y0), free(y1), free(y2), free(rows);
    }
}

static void test_batch_invariant(void) {
    const int64_t N = 50, K = 70, F = 31;
    float *x = rnd(40 * K, 80), *w = rnd(N * K, 81), *wu = rnd(F * K, 82);
    float *xa = packed(x, 3, K), *xb = packed(x, 40, K);
    float *ya = calloc(3 * N, sizeof(float)), *yb = calloc(40 * N, sizeof(float));
    empo_k_panel_linear(ya, N, 0, xa, 3, K, w, NULL, 0, N);
    for (int64_t n0 = 0; n0 < N; n0 += 2 * EMPO_PANEL_STRIP)
        empo_k_panel_linear(yb, N, 0, xb, 40, K, w, NULL, n0,
                            n0 + 2 * EMPO_PANEL_STRIP < N ? n0 + 2 * EMPO_PANEL_STRIP : N);
    CHECK(memcmp(ya + 2 * N, yb + 2 * N, sizeof(float) * N) == 0);
    float *sa = calloc((size_t)(EMPO_PANEL * F), sizeof(float)),
          *sb = calloc((size_t)(3 * EMPO_PANEL * F), sizeof(float));
    empo_k_panel_swiglu(sa, F, xa, 3, K, w, wu, 0, F);
    empo_k_panel_swiglu(sb, F, xb, 40, K, w, wu, 0, EMPO_PANEL_PAIRS);
    empo_k_panel_swiglu(sb, F, xb, 40, K, w, wu, EMPO_PANEL_PAIRS, F);
    int same = 1;
    for (int64_t f = 0; f < F; f++) same &= sa[f * EMPO_PANEL + 2] == sb[f * EMPO_PANEL + 2];
    check_report(__FILE__, __LINE__, same, "swiglu row 2: same bits in a batch of 3 and of 40");
    free(x), free(w), free(wu), free(xa), free(xb), free(ya), free(yb), free(sa), free(sb);
}

/* w rounded to bf16 (to nearest, ties to even), and the rounded values as f32 */
static uint16_t *to_bf16(const float *w, int64_t n, float **widened) {
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n + 1));
    *widened = malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, w + i, sizeof b);
        b += 0x7FFFu + ((b >> 16) & 1u);
        h[i] = (uint16_t)(b >> 16);
        const uint32_t back = (uint32_t)h[i] << 16;
        memcpy(*widened + i, &back, sizeof back);
    }
    return h;
}

static void test_bf16(void) {
    /* the shapes above, whose strips are widened once onto the stack, and
     * one deeper than that (2101 > 2048, odd): widened in the registers */
    static const int64_t deep[3] = {19, 7, 2101};
    for (int c = 0; c < 8; c++) {
        const int64_t *shape = c < 7 ? shapes[c] : deep;
        const int64_t M = shape[0], N = shape[1], K = shape[2], ldy = N + 2, ldp = (N + 3) * EMPO_PANEL;
        const int64_t size = empo_panels(M) * ldp, n = empo_panels(M) * EMPO_PANEL * N;
        float *x = rnd(M * K, 110 + c), *w = rnd(N * K, 120 + c), *wu = rnd(N * K, 130 + c), *b = rnd(N, 140 + c);
        float *xp = packed(x, M, K), *wf, *wuf;
        uint16_t *wh = to_bf16(w, N * K, &wf), *wuh = to_bf16(wu, N * K, &wuf);
        float *y[6];
        for (int i = 0; i < 6; i++) y[i] = rnd(size > M * ldy ? size : M * ldy, 150 + c);   /* same start */
        const int64_t mid = N / 2 / EMPO_PANEL_STRIP * EMPO_PANEL_STRIP;
        empo_k_panel_linear_bf16(y[0], ldy, 1, xp, M, K, wh, b, 0, mid);
        empo_k_panel_linear_bf16(y[0], ldy, 1, xp, M, K, wh, b, mid, N);
        empo_k_panel_linear(y[1], ldy, 1, xp, M, K, wf, b, 0, N);
        empo_ref_panel_linear_bf16(y[2], ldy, 1, xp, M, K, wh, b, 0, N);
        empo_k_panel_linear_panels_bf16(y[3], ldp, 0, xp, M, K, wh, NULL, 0, N);
        empo_k_panel_linear_panels(y[4], ldp, 0, xp, M, K, wf, NULL, 0, N);
        empo_ref_panel_linear_panels_bf16(y[5], ldp, 0, xp, M, K, wh, NULL, 0, N);
        const double e = check_rel_err(y[0], y[2], M * ldy), ep = check_rel_err(y[3], y[5], size);
        check_report(__FILE__, __LINE__, memcmp(y[0], y[1], sizeof(float) * (size_t)(M * ldy)) == 0 &&
                                             memcmp(y[3], y[4], sizeof(float) * (size_t)size) == 0,
                     "panel_linear(_panels)_bf16 %lldx%lldx%lld: the f32 tiles' bits on the rounded weights",
                     (long long)M, (long long)N, (long long)K);
        check_report(__FILE__, __LINE__, e <= TOL && ep <= TOL,
                     "panel_linear(_panels)_bf16 %lldx%lldx%lld: rel err %.3g, %.3g vs reference", (long long)M,
                     (long long)N, (long long)K, e, ep);
        float *s1 = calloc((size_t)n, sizeof(float)), *s2 = calloc((size_t)n, sizeof(float)),
              *s3 = calloc((size_t)n, sizeof(float));
        empo_k_panel_swiglu_bf16(s1, N, xp, M, K, wh, wuh, 0, N);
        empo_k_panel_swiglu(s2, N, xp, M, K, wf, wuf, 0, N);
        empo_ref_panel_swiglu_bf16(s3, N, xp, M, K, wh, wuh, 0, N);
        const double es = check_rel_err(s1, s3, n);
        check_report(__FILE__, __LINE__, memcmp(s1, s2, sizeof(float) * (size_t)n) == 0 && es <= TOL,
                     "panel_swiglu_bf16 %lldx%lldx%lld: the f32 tile's bits, rel err %.3g vs reference",
                     (long long)M, (long long)N, (long long)K, es);
        for (int i = 0; i < 6; i++) free(y[i]);
        free(x), free(w), free(wu), free(b), free(xp), free(wf), free(wuf), free(wh), free(wuh), free(s1), free(s2),
            free(s3);
    }
}

int main(void) {
    test_pack();
    test_linear();
    test_linear_panels();
    test_swiglu();
    test_batch_invariant();
    test_bf16();
    return check_finish("test_panel_gemm");
}
