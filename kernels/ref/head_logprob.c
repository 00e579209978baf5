/* head_logprob.c (ref) — the naive LM head + log-prob + entropy: one row
 * at a time, its logits in double, no chunks and no gemm. The oracle for
 * the chunked kernels (kernels/head_chunks.h); chunk and work are unused. */
#include <math.h>
#include <stdlib.h>
#include "kernels/fused.h"

/* the row's logits scale * h . W[v] for v < V, in double */
static void row_logits(double *z, const float *h, const float *W, int64_t D, int64_t V, float scale) {
    for (int64_t v = 0; v < V; v++) {
        double s = 0.0;
        for (int64_t d = 0; d < D; d++) s += (double)h[d] * W[v * D + d];
        z[v] = (double)scale * s;
    }
}

static double row_lse(const double *z, int64_t V) {
    double m = -INFINITY, s = 0.0;
    for (int64_t v = 0; v < V; v++) m = z[v] > m ? z[v] : m;
    for (int64_t v = 0; v < V; v++) s += exp(z[v] - m);
    return m + log(s);
}

void empo_ref_head_logprob_forward(float *logp, float *ent, float *lse, const float *h, const float *W,
                                   const int64_t *ids, int64_t N, int64_t D, int64_t V, float scale, int64_t chunk,
                                   float *work) {
    (void)chunk, (void)work;
    double *z = malloc(sizeof(double) * (size_t)(V > 0 ? V : 1));
    if (!z) abort();   /* a test oracle: no partial results */
    for (int64_t n = 0; n < N; n++) {
        row_logits(z, h + n * D, W, D, V, scale);
        const double L = row_lse(z, V);
        double H = 0.0;
        for (int64_t v = 0; v < V; v++) {
            const double p = exp(z[v] - L);
            if (p > 0.0) H -= p * (z[v] - L);
        }
        lse[n] = (float)L, ent[n] = (float)H, logp[n] = (float)(z[ids[n]] - L);
    }
    free(z);
}

void empo_ref_head_logprob_backward(float *dh, float *dW, const float *dlogp, const float *dent, const float *h,
                                    const float *W, const int64_t *ids, const float *lse, const float *ent, int64_t N,
                                    int64_t D, int64_t V, float scale, int64_t chunk, float *work) {
    (void)chunk, (void)work;
    double *z = malloc(sizeof(double) * (size_t)(V > 0 ? V : 1)), *acc = malloc(sizeof(double) * (size_t)(D > 0 ? D : 1));
    if (!z || !acc) abort();
    for (int64_t n = 0; n < N; n++) {
        const float *hn = h + n * D;
        row_logits(z, hn, W, D, V, scale);
        const double gl = dlogp ? dlogp[n] : 0.0, ge = dent ? dent[n] : 0.0, L = lse[n], H = dent ? ent[n] : 0.0;
        for (int64_t d = 0; d < D; d++) acc[d] = 0.0;
        for (int64_t v = 0; v < V; v++) {
            const double lp = z[v] - L, p = exp(lp);
            double g = (v == ids[n] ? gl : 0.0) - gl * p;   /* d logit v */
            if (p > 0.0) g -= ge * p * (lp + H);
            g *= scale;
            for (int64_t d = 0; d < D; d++) {
                acc[d] += g * W[v * D + d];
                if (dW) dW[v * D + d] += (float)(g * hn[d]);
            }
        }
        for (int64_t d = 0; dh && d < D; d++) dh[n * D + d] = (float)acc[d];
    }
    free(z), free(acc);
}
