/* ref/reduce.c — naive references for reductions and softmax, in double. */
#include <math.h>
#include "kernels/reduce.h"

void empo_ref_sum_dim(float *out, const float *x, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = 0;
            for (int64_t k = 0; k < n; k++) acc += x[(o * n + k) * inner + i];
            out[o * inner + i] = (float)acc;
        }
}

void empo_ref_max_dim(float *vals, int64_t *idx, const float *x, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            for (int64_t k = 1; k < n; k++) {
                float v = x[(o * n + k) * inner + i], b = x[(o * n + best) * inner + i];
                if (!isnan(b) && (v > b || isnan(v))) best = k;
            }
            vals[o * inner + i] = x[(o * n + best) * inner + i];
            idx[o * inner + i] = best;
        }
}

void empo_ref_softmax(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int want_log) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *r = x + o * n * inner + i;
            float *w = y + o * n * inner + i;
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < n; k++) m = r[k * inner] > m ? r[k * inner] : m;
            for (int64_t k = 0; k < n; k++) s += exp(r[k * inner] - m);
            for (int64_t k = 0; k < n; k++) {
                double z = r[k * inner] - m;
                w[k * inner] = (float)(want_log ? z - log(s) : exp(z) / s);
            }
        }
}

void empo_ref_softmax_backward(float *gx, const float *g, const float *y, int64_t outer, int64_t n, int64_t inner,
                               int want_log) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i;
            double s = 0;
            for (int64_t k = 0; k < n; k++)
                s += want_log ? g[base + k * inner] : (double)g[base + k * inner] * y[base + k * inner];
            for (int64_t k = 0; k < n; k++) {
                int64_t j = base + k * inner;
                gx[j] = (float)(want_log ? g[j] - exp(y[j]) * s : y[j] * (g[j] - s));
            }
        }
}
