/* fused_norm.c — fast CPU kernels for RMSNorm and SwiGLU (f32), forward and
 * backward. Each kernel is a per-row (or per-chunk) function and a driver
 * that runs it on one thread for small work — entering an OpenMP region
 * costs ~0.4 us even with one thread, more than a decode-sized row — and
 * with OpenMP otherwise. Inner loops are `omp simd` (GCC's -O2 cost model
 * leaves plain loops of unknown length scalar). The naive versions are in
 * kernels/ref. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf; we
 * never read floating-point exception flags. */
#pragma GCC optimize("no-trapping-math")
#include <string.h>
#include "kernels/parallel.h"
#include "kernels/fused.h"
#include "fused_rows.h"

enum {
    DW_COLS = 64,    /* weight-gradient columns one task owns */
    CHUNK = 4096     /* elementwise elements per task */
};

/* ---- RMSNorm ---- */

static void rms_row_forward(float *y, float *rstd, const float *x, const float *w, int64_t D,
                            float eps) {
    const float r = empo_k_rms_rstd(x, D, eps);
    *rstd = r;
#pragma omp simd
    for (int64_t j = 0; j < D; j++) y[j] = (x[j] * r) * w[j];
}

void empo_k_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w,
                            int64_t N, int64_t D, float eps) {
    const int nt = empo_omp_threads_for(N * D);
    if (nt == 1) {
        for (int64_t n = 0; n < N; n++) rms_row_forward(out + n * D, rstd + n, x + n * D, w, D, eps);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t n = 0; n < N; n++) rms_row_forward(out + n * D, rstd + n, x + n * D, w, D, eps);
}

/* dx = r * w * g - x * r^3 * mean(g * w * x) for one row. */
static void rms_row_dx(float *dx, const float *g, const float *x, const float *w, float r, int64_t D) {
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < D; j++) dot += g[j] * w[j] * x[j];
    const float c = r * r * r * dot / (float)D;
#pragma omp simd
    for (int64_t j = 0; j < D; j++) dx[j] = r * w[j] * g[j] - x[j] * c;
}

/* dw[c0:c1] = sum_n g[n, c0:c1] * x[n, c0:c1] * r[n]. Tasks own disjoint
 * column blocks and walk all rows, so there is no reduction across threads
 * and the result does not depend on the thread count. */
static void rms_cols_dw(float *dw, const float *dout, const float *x, const float *rstd, int64_t N,
                        int64_t D, int64_t c0) {
    const int64_t c1 = c0 + DW_COLS < D ? c0 + DW_COLS : D;
    memset(dw + c0, 0, sizeof(float) * (size_t)(c1 - c0));
    for (int64_t n = 0; n < N; n++) {
        const float *g = dout + n * D, *xr = x + n * D;
        const float r = rstd[n];
#pragma omp simd
        for (int64_t j = c0; j < c1; j++) dw[j] += g[j] * xr[j] * r;
    }
}

void empo_k_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x,
                             const float *w, const float *rstd, int64_t N, int64_t D) {
    const int nt = empo_omp_threads_for(N * D);
    if (nt == 1) {
        for (int64_t n = 0; dx && n < N; n++) rms_row_dx(dx + n * D, dout + n * D, x + n * D, w, rstd[n], D);
        for (int64_t c0 = 0; dw && c0 < D; c0 += DW_COLS) rms_cols_dw(dw, dout, x, rstd, N, D, c0);
        return;
    }
    if (dx) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t n = 0; n < N; n++) rms_row_dx(dx + n * D, dout + n * D, x + n * D, w, rstd[n], D);
    }
    if (dw) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t c0 = 0; c0 < D; c0 += DW_COLS) rms_cols_dw(dw, dout, x, rstd, N, D, c0);
    }
}

/* ---- SwiGLU ---- */

static void swiglu_chunk(float *out, const float *gate, const float *up, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = empo_k_swiglu(gate[i], up[i]);
}

void empo_k_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    const int nt = empo_omp_threads_for(n * 8);   /* exp and a division: ~8 simple ops */
    if (nt == 1) {
        swiglu_chunk(out, gate, up, n);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK)
        swiglu_chunk(out + i0, gate + i0, up + i0, n - i0 < CHUNK ? n - i0 : CHUNK);
}

/* d silu(g)/dg = s * (1 + g * (1 - s)) with s = sigmoid(g). */
static void swiglu_chunk_backward(float *dgate, float *dup, const float *dout, const float *gate,
                                  const float *up, int64_t n) {
    if (dgate && dup) {   /* both: one exp and one division per element, not two */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float g = gate[i], sig = 1.0f / (1.0f + empo_k_expf(-g));
            dgate[i] = dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
            dup[i] = dout[i] * g * sig;
        }
        return;
    }
    if (dgate) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float g = gate[i], sig = 1.0f / (1.0f + empo_k_expf(-g));
            dgate[i] = dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
        }
    }
    if (dup) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float g = gate[i], sig = 1.0f / (1.0f + empo_k_expf(-g));
            dup[i] = dout[i] * g * sig;
        }
    }
}

void empo_k_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, int64_t n) {
    const int nt = empo_omp_threads_for(n * 8);
    if (nt == 1) {
        swiglu_chunk_backward(dgate, dup, dout, gate, up, n);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK)
        swiglu_chunk_backward(dgate ? dgate + i0 : NULL, dup ? dup + i0 : NULL, dout + i0, gate + i0,
                              up + i0, n - i0 < CHUNK ? n - i0 : CHUNK);
}
