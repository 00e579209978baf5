/* cpu/reduce.c — fast reductions and softmax. Rows (inner == 1, the common
 * last-dim case) are handled with contiguous loops; other layouts sweep the
 * reduced dim with the inner dim vectorised. Sums accumulate in double so
 * long reductions stay within 1e-6 of the reference. */
#include <math.h>
#include <stdlib.h>
#include "internal.h"
#include "reduce.h"

void empo_k_sum_dim(float *out, const float *x, int64_t outer, int64_t n, int64_t inner) {
    if (inner == 1) {
        #pragma omp parallel for num_threads(empo_omp_threads_for(outer * n)) schedule(static)
        for (int64_t o = 0; o < outer; o++) {
            const float *r = x + o * n;
            double acc = 0;
            for (int64_t k = 0; k < n; k++) acc += r[k];
            out[o] = (float)acc;
        }
        return;
    }
    #pragma omp parallel for num_threads(empo_omp_threads_for(outer * n * inner)) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        double *acc = calloc((size_t)inner, sizeof *acc);
        if (!acc) continue;   /* cannot happen for sane sizes; leaves garbage rather than crash */
        for (int64_t k = 0; k < n; k++) {
            const float *r = x + (o * n + k) * inner;
            for (int64_t i = 0; i < inner; i++) acc[i] += r[i];
        }
        for (int64_t i = 0; i < inner; i++) out[o * inner + i] = (float)acc[i];
        free(acc);
    }
}

void empo_k_max_dim(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t n, int64_t inner) {
    #pragma omp parallel for num_threads(empo_omp_threads_for(outer * n * inner)) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            const float *r = x + o * n * inner + i;
            int64_t best = 0;
            float b = r[0];
            for (int64_t k = 1; k < n && b == b; k++) {
                float v = r[k * inner];
                if (v > b || v != v) { b = v; best = k; }
            }
            vals[o * inner + i] = b;
            idx[o * inner + i] = best;
        }
    }
}

static void softmax_row(float *y, const float *x, int64_t n, int want_log) {
    float m = -INFINITY;
    for (int64_t k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
    double s = 0;
    if (want_log) {
        for (int64_t k = 0; k < n; k++) s += expf(x[k] - m);
        float lse = m + (float)log(s);
        for (int64_t k = 0; k < n; k++) y[k] = x[k] - lse;
    } else {
        for (int64_t k = 0; k < n; k++) { y[k] = expf(x[k] - m); s += y[k]; }
        float inv = (float)(1.0 / s);
        for (int64_t k = 0; k < n; k++) y[k] *= inv;
    }
}

void empo_k_softmax(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int want_log) {
    if (inner != 1) {   /* strided layouts are rare (softmax over a middle dim) */
        empo_ref_softmax(y, x, outer, n, inner, want_log);
        return;
    }
    #pragma omp parallel for num_threads(empo_omp_threads_for(outer * n * 8)) schedule(static)
    for (int64_t o = 0; o < outer; o++) softmax_row(y + o * n, x + o * n, n, want_log);
}

void empo_k_softmax_backward(float *gx, const float *g, const float *y, int64_t outer, int64_t n, int64_t inner,
                             int want_log) {
    if (inner != 1) {
        empo_ref_softmax_backward(gx, g, y, outer, n, inner, want_log);
        return;
    }
    #pragma omp parallel for num_threads(empo_omp_threads_for(outer * n * 8)) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        const float *gr = g + o * n, *yr = y + o * n;
        float *xr = gx + o * n;
        double s = 0;
        if (want_log) {
            for (int64_t k = 0; k < n; k++) s += gr[k];
            for (int64_t k = 0; k < n; k++) xr[k] = gr[k] - expf(yr[k]) * (float)s;
        } else {
            for (int64_t k = 0; k < n; k++) s += gr[k] * yr[k];
            for (int64_t k = 0; k < n; k++) xr[k] = yr[k] * (gr[k] - (float)s);
        }
    }
}
