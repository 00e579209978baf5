/* panel_gemm.h — the products of a decode step: few rows of activations
 * (one token per sequence) against the model's weights as they are stored,
 * [out, in] row-major, never packed or copied.
 *
 * The activations are packed instead (they are small): X [M, K] as
 * ceil(M / 16) panels, each [K][16] — the k-th elements of 16 rows side by
 * side, lanes beyond M zero (empo_k_panel_pack). A register tile of
 * 6 weight rows x 16 lanes then takes one weight element per row
 * (a broadcast) and one panel row (two vectors) per step of k; each weight
 * strip is read from memory once for all panels, and the next strip is
 * prefetched while the current one is reused.
 *
 * Every output is one fused multiply-add chain over k = 0 .. K-1 in order,
 * whatever M, N, the split of the columns between threads or the number
 * of threads: a sequence's numbers do not depend on which others share
 * its batch. The kernels cannot fail; callers split the columns (in
 * multiples of EMPO_PANEL_STRIP, or EMPO_PANEL_PAIRS for SwiGLU) and
 * validate shapes.
 *
 * The _bf16 variants take the weights as bfloat16 (the top half of an
 * f32's bits, as empo's EMPO_BF16 tensors hold them: half the bytes to
 * stream), widened to f32 exactly in the registers; the same chains, so
 * their results are the bits of the f32 kernels run on the weights
 * rounded to bf16 (a test holds them to that).
 *
 *   kernels/cpu/panel_gemm.c   AVX2 + FMA tiles
 *   kernels/ref/panel_gemm.c   three loops in double: the oracle */
#ifndef EMPO_KERNELS_PANEL_GEMM_H
#define EMPO_KERNELS_PANEL_GEMM_H
#include <stdint.h>
#include <string.h>

enum {
    EMPO_PANEL = 16,       /* rows (lanes) per panel */
    EMPO_PANEL_STRIP = 6,  /* weight rows per tile */
    EMPO_PANEL_PAIRS = 3   /* gate/up row pairs per SwiGLU tile */
};

static inline int64_t empo_panels(int64_t M) { return (M + EMPO_PANEL - 1) / EMPO_PANEL; }

/* Panel p (K x 16 floats at `panel`) of an M-row matrix about to be
 * filled: zeroed when some of its lanes lie beyond M. Returns its rows. */
static inline int64_t empo_panel_start(float *panel, int64_t p, int64_t M, int64_t K) {
    const int64_t nm = M - p * EMPO_PANEL < EMPO_PANEL ? M - p * EMPO_PANEL : EMPO_PANEL;
    if (nm < EMPO_PANEL) memset(panel, 0, sizeof(float) * (size_t)(K * EMPO_PANEL));
    return nm;
}

/* Panels p0 .. p1-1 of xp (ceil(M/16) x [K][16]) from x [M, K] (row stride ldx). */
void empo_k_panel_pack(float *xp, const float *x, int64_t M, int64_t K, int64_t ldx, int64_t p0, int64_t p1);

/* y[m, n] = (accumulate ? y[m, n] : 0) + sum_k x[m, k] w[n, k] (+ bias[n])
 * for m < M and n0 <= n < n1, with x given as panels xp and w [N, K]
 * row-major (bias NULL: none). y row stride ldy. */
typedef void empo_panel_linear_fn(float *y, int64_t ldy, int accumulate, const float *xp, int64_t M, int64_t K,
                                  const float *w, const float *bias, int64_t n0, int64_t n1);
empo_panel_linear_fn empo_k_panel_linear, empo_ref_panel_linear;

/* The same product written as panels (what a norm or another product
 * reads next, so no transposing in between): y[m, n] lies at
 * yp[m / 16 * ldp + n * 16 + m % 16] (ldp: a panel's stride, >= 16 N);
 * every lane of the panels of rows 0 .. M-1 is written, those beyond M
 * getting (accumulate ? their value : 0) + bias[n]. Same bits as
 * empo_k_panel_linear. */
empo_panel_linear_fn empo_k_panel_linear_panels, empo_ref_panel_linear_panels;

/* SwiGLU of two products, written as panels: s[m, f] = silu(g) * u with
 * g = x . wg[f], u = x . wu[f] (wg, wu [F, K]), for f0 <= f < f1; sp holds
 * ceil(M/16) panels of [F][16] (lanes beyond M get silu(0) * 0 = 0). */
typedef void empo_panel_swiglu_fn(float *sp, int64_t F, const float *xp, int64_t M, int64_t K, const float *wg,
                                  const float *wu, int64_t f0, int64_t f1);
empo_panel_swiglu_fn empo_k_panel_swiglu, empo_ref_panel_swiglu;

/* The same three with bf16 weights (uint16_t, w [N, K] / wg, wu [F, K] as above). */
typedef void empo_panel_linear_bf16_fn(float *y, int64_t ldy, int accumulate, const float *xp, int64_t M, int64_t K,
                                       const uint16_t *w, const float *bias, int64_t n0, int64_t n1);
empo_panel_linear_bf16_fn empo_k_panel_linear_bf16, empo_ref_panel_linear_bf16;
empo_panel_linear_bf16_fn empo_k_panel_linear_panels_bf16, empo_ref_panel_linear_panels_bf16;
typedef void empo_panel_swiglu_bf16_fn(float *sp, int64_t F, const float *xp, int64_t M, int64_t K,
                                       const uint16_t *wg, const uint16_t *wu, int64_t f0, int64_t f1);
empo_panel_swiglu_bf16_fn empo_k_panel_swiglu_bf16, empo_ref_panel_swiglu_bf16;

#endif
