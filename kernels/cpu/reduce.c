/* cpu/reduce.c — fast reductions and softmax. Rows (inner == 1, the common
 * last-dim case) are handled with contiguous loops; other layouts sweep the
 * reduced dim with the inner dim vectorised. Sums accumulate in double so
 * long reductions stay within 1e-6 of the reference. Work is split over
 * the outer dim with empo_parallel_for (serial when small). */
#include <math.h>
#include "kernels/parallel.h"
#include "kernels/reduce.h"

typedef struct {
    float *out, *vals;
    int64_t *idx;
    const float *x, *g, *y;
    int64_t n, inner;
    int want_log;
} reduce_job;

static void sum_range(void *ctx, int64_t lo, int64_t hi) {
    reduce_job *j = ctx;
    int64_t n = j->n, inner = j->inner;
    for (int64_t o = lo; o < hi; o++) {
        if (inner == 1) {
            const float *r = j->x + o * n;
            double acc = 0;
            for (int64_t k = 0; k < n; k++) acc += r[k];
            j->out[o] = (float)acc;
            continue;
        }
        /* double accumulators for a block of the inner dim */
        for (int64_t i0 = 0; i0 < inner; i0 += 256) {
            double acc[256] = {0};
            int64_t len = inner - i0 < 256 ? inner - i0 : 256;
            for (int64_t k = 0; k < n; k++) {
                const float *r = j->x + (o * n + k) * inner + i0;
                for (int64_t i = 0; i < len; i++) acc[i] += r[i];
            }
            for (int64_t i = 0; i < len; i++) j->out[o * inner + i0 + i] = (float)acc[i];
        }
    }
}

void empo_k_sum_dim(float *out, const float *x, int64_t outer, int64_t n, int64_t inner) {
    reduce_job j = {.out = out, .x = x, .n = n, .inner = inner};
    empo_parallel_for(outer, outer * n * inner, sum_range, &j);
}

static void max_range(void *ctx, int64_t lo, int64_t hi) {
    reduce_job *j = ctx;
    for (int64_t o = lo; o < hi; o++) {
        for (int64_t i = 0; i < j->inner; i++) {
            const float *r = j->x + o * j->n * j->inner + i;
            int64_t best = 0;
            float b = r[0];
            for (int64_t k = 1; k < j->n && b == b; k++) {
                float v = r[k * j->inner];
                if (v > b || v != v) { b = v; best = k; }
            }
            j->vals[o * j->inner + i] = b;
            j->idx[o * j->inner + i] = best;
        }
    }
}

void empo_k_max_dim(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t n, int64_t inner) {
    reduce_job j = {.vals = vals, .idx = idx, .x = x, .n = n, .inner = inner};
    empo_parallel_for(outer, outer * n * inner, max_range, &j);
}

static void softmax_range(void *ctx, int64_t lo, int64_t hi) {
    reduce_job *j = ctx;
    int64_t n = j->n;
    for (int64_t o = lo; o < hi; o++) {
        const float *x = j->x + o * n;
        float *y = j->out + o * n, m = -INFINITY;
        for (int64_t k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
        double s = 0;
        if (j->want_log) {
            for (int64_t k = 0; k < n; k++) s += expf(x[k] - m);
            float lse = m + (float)log(s);
            for (int64_t k = 0; k < n; k++) y[k] = x[k] - lse;
        } else {
            for (int64_t k = 0; k < n; k++) { y[k] = expf(x[k] - m); s += y[k]; }
            float inv = (float)(1.0 / s);
            for (int64_t k = 0; k < n; k++) y[k] *= inv;
        }
    }
}

void empo_k_softmax(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int want_log) {
    if (inner != 1) {   /* strided layouts are rare (softmax over a middle dim) */
        empo_ref_softmax(y, x, outer, n, inner, want_log);
        return;
    }
    reduce_job j = {.out = y, .x = x, .n = n, .want_log = want_log};
    empo_parallel_for(outer, outer * n * 8, softmax_range, &j);
}

static void softmax_backward_range(void *ctx, int64_t lo, int64_t hi) {
    reduce_job *j = ctx;
    int64_t n = j->n;
    for (int64_t o = lo; o < hi; o++) {
        const float *gr = j->g + o * n, *yr = j->y + o * n;
        float *xr = j->out + o * n;
        double s = 0;
        if (j->want_log) {
            for (int64_t k = 0; k < n; k++) s += gr[k];
            for (int64_t k = 0; k < n; k++) xr[k] = gr[k] - expf(yr[k]) * (float)s;
        } else {
            for (int64_t k = 0; k < n; k++) s += gr[k] * yr[k];
            for (int64_t k = 0; k < n; k++) xr[k] = yr[k] * (gr[k] - (float)s);
        }
    }
}

void empo_k_softmax_backward(float *gx, const float *g, const float *y, int64_t outer, int64_t n, int64_t inner,
                             int want_log) {
    if (inner != 1) {
        empo_ref_softmax_backward(gx, g, y, outer, n, inner, want_log);
        return;
    }
    reduce_job j = {.out = gx, .g = g, .y = y, .n = n, .want_log = want_log};
    empo_parallel_for(outer, outer * n * 8, softmax_backward_range, &j);
}
