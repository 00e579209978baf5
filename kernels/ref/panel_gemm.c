/* panel_gemm.c (ref) — the decode step's products of kernels/panel_gemm.h
 * as plain loops summed in double: the oracle for kernels/cpu/panel_gemm.c.
 * The bf16 ones widen the weights to f32 first (a row at a time) and run
 * the f32 loops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/panel_gemm.h"

/* x[m, k] read from the panels */
static double at(const float *xp, int64_t K, int64_t m, int64_t k) {
    return xp[(m / EMPO_PANEL * K + k) * EMPO_PANEL + m % EMPO_PANEL];
}

static double dot(const float *xp, int64_t K, int64_t m, const float *w) {
    double s = 0.0;
    for (int64_t k = 0; k < K; k++) s += at(xp, K, m, k) * w[k];
    return s;
}

void empo_ref_panel_linear(float *y, int64_t ldy, int accumulate, const float *xp, int64_t M, int64_t K,
                           const float *w, const float *bias, int64_t n0, int64_t n1) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = n0; n < n1; n++) {
            const double v = dot(xp, K, m, w + n * K) + (bias ? bias[n] : 0.0);
            y[m * ldy + n] = (float)(accumulate ? y[m * ldy + n] + v : v);
        }
}

void empo_ref_panel_linear_panels(float *yp, int64_t ldp, int accumulate, const float *xp, int64_t M, int64_t K,
                                  const float *w, const float *bias, int64_t n0, int64_t n1) {
    for (int64_t m = 0; m < empo_panels(M) * EMPO_PANEL; m++)
        for (int64_t n = n0; n < n1; n++) {
            float *y = yp + m / EMPO_PANEL * ldp + n * EMPO_PANEL + m % EMPO_PANEL;
            const double v = (m < M ? dot(xp, K, m, w + n * K) : 0.0) + (bias ? bias[n] : 0.0);
            *y = (float)(accumulate ? *y + v : v);
        }
}

void empo_ref_panel_swiglu(float *sp, int64_t F, const float *xp, int64_t M, int64_t K, const float *wg,
                           const float *wu, int64_t f0, int64_t f1) {
    for (int64_t m = 0; m < empo_panels(M) * EMPO_PANEL; m++)
        for (int64_t f = f0; f < f1; f++) {
            const double g = m < M ? dot(xp, K, m, wg + f * K) : 0.0, u = m < M ? dot(xp, K, m, wu + f * K) : 0.0;
            sp[(m / EMPO_PANEL * F + f) * EMPO_PANEL + m % EMPO_PANEL] = (float)(g / (1.0 + exp(-g)) * u);
        }
}

/* rows n0 .. n1-1 of a bf16 [N, K] matrix as f32, at their own row numbers
 * (the rows before n0 are left unset): the f32 loops index it as they would w */
static float *widen(const uint16_t *w, int64_t K, int64_t n0, int64_t n1) {
    float *f = malloc(sizeof(float) * (size_t)(n1 * K + 1));
    if (!f) abort();   /* the oracle: tests only */
    for (int64_t i = n0 * K; i < n1 * K; i++) {
        const uint32_t bits = (uint32_t)w[i] << 16;
        memcpy(f + i, &bits, sizeof bits);
    }
    return f;
}

void empo_ref_panel_linear_bf16(float *y, int64_t ldy, int accumulate, const float *xp, int64_t M, int64_t K,
                                const uint16_t *w, const float *bias, int64_t n0, int64_t n1) {
    float *f = widen(w, K, n0, n1);
    empo_ref_panel_linear(y, ldy, accumulate, xp, M, K, f, bias, n0, n1);
    free(f);
}

void empo_ref_panel_linear_panels_bf16(float *yp, int64_t ldp, int accumulate, const float *xp, int64_t M, int64_t K,
                                       const uint16_t *w, const float *bias, int64_t n0, int64_t n1) {
    float *f = widen(w, K, n0, n1);
    empo_ref_panel_linear_panels(yp, ldp, accumulate, xp, M, K, f, bias, n0, n1);
    free(f);
}

void empo_ref_panel_swiglu_bf16(float *sp, int64_t F, const float *xp, int64_t M, int64_t K, const uint16_t *wg,
                                const uint16_t *wu, int64_t f0, int64_t f1) {
    float *g = widen(wg, K, f0, f1), *u = widen(wu, K, f0, f1);
    empo_ref_panel_swiglu(sp, F, xp, M, K, g, u, f0, f1);
    free(g), free(u);
}
