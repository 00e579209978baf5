/* fused_norm.c — fast CPU kernels for RMSNorm and SwiGLU (f32), forward and
 * backward. OpenMP over rows (or column blocks for the weight gradient),
 * vectorizable inner loops. The naive versions are in kernels/ref. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf; we
 * never read floating-point exception flags. */
#pragma GCC optimize("no-trapping-math")
#include "internal.h"
#include "fused.h"

/* ---- RMSNorm ---- */

void empo_k_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w,
                            int64_t N, int64_t D, float eps) {
#pragma omp parallel for num_threads(empo_omp_threads_for(N * D)) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * D;   // (D)
        float *yr = out + n * D;       // (D)
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < D; j++) ss += xr[j] * xr[j];
        float r = 1.0f / sqrtf(ss / (float)D + eps);
        rstd[n] = r;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] * r) * w[j];
    }
}

/* dx = r * w * g - x * r^3 * mean(g * w * x), one row per iteration. */
static void rmsnorm_dx(float *dx, const float *dout, const float *x, const float *w,
                       const float *rstd, int64_t N, int64_t D) {
#pragma omp parallel for num_threads(empo_omp_threads_for(N * D)) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *g = dout + n * D, *xr = x + n * D;   // (D)
        float *d = dx + n * D;                           // (D)
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < D; j++) dot += g[j] * w[j] * xr[j];
        float r = rstd[n];
        float c = r * r * r * dot / (float)D;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) d[j] = r * w[j] * g[j] - xr[j] * c;
    }
}

/* dw[j] = sum_n g[n,j] * x[n,j] * r[n]. Threads own disjoint blocks of
 * columns and walk all rows, so there is no reduction across threads and
 * the result does not depend on the thread count. */
static void rmsnorm_dw(float *dw, const float *dout, const float *x, const float *rstd,
                       int64_t N, int64_t D) {
    enum { COLS = 64 };
#pragma omp parallel for num_threads(empo_omp_threads_for(N * D)) schedule(static)
    for (int64_t c0 = 0; c0 < D; c0 += COLS) {
        int64_t c1 = c0 + COLS < D ? c0 + COLS : D;
        for (int64_t j = c0; j < c1; j++) dw[j] = 0.0f;
        for (int64_t n = 0; n < N; n++) {
            const float *g = dout + n * D, *xr = x + n * D;
            float r = rstd[n];
#pragma omp simd
            for (int64_t j = c0; j < c1; j++) dw[j] += g[j] * xr[j] * r;
        }
    }
}

void empo_k_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x,
                             const float *w, const float *rstd, int64_t N, int64_t D) {
    if (dx) rmsnorm_dx(dx, dout, x, w, rstd, N, D);
    if (dw) rmsnorm_dw(dw, dout, x, rstd, N, D);
}

/* ---- SwiGLU ---- */

void empo_k_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    enum { CHUNK = 4096 };   /* elements per scheduling unit */
#pragma omp parallel for num_threads(empo_omp_threads_for(n)) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        int64_t i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) {
            float sig = 1.0f / (1.0f + empo_k_expf(-gate[i]));
            out[i] = gate[i] * sig * up[i];
        }
    }
}

/* d silu(g)/dg = s * (1 + g * (1 - s)) with s = sigmoid(g). */
void empo_k_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, int64_t n) {
    enum { CHUNK = 4096 };
#pragma omp parallel for num_threads(empo_omp_threads_for(n)) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        int64_t i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
        if (dgate) {
#pragma omp simd
            for (int64_t i = i0; i < i1; i++) {
                float g = gate[i], sig = 1.0f / (1.0f + empo_k_expf(-g));
                dgate[i] = dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
            }
        }
        if (dup) {
#pragma omp simd
            for (int64_t i = i0; i < i1; i++) {
                float g = gate[i], sig = 1.0f / (1.0f + empo_k_expf(-g));
                dup[i] = dout[i] * g * sig;
            }
        }
    }
}
