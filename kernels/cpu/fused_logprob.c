/* fused_logprob.c — fast CPU kernels for token log-prob and entropy from
 * logits (f32), forward and backward, one row per iteration. The forward
 * streams each row once (an online softmax over L1-sized chunks that sums
 * exp and exp * logit together) and never stores the softmax; the backward
 * recomputes it from the saved log-sum-exp. The naive version is in
 * kernels/ref. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf. */
#pragma GCC optimize("no-trapping-math")
#include "kernels/parallel.h"
#include "kernels/fused.h"

enum { CHUNK = 1024 };   /* logits per chunk: read twice while in L1, summed in f32 */

static float chunk_max(const float *x, int64_t n) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

/* lse = m + log Z and entropy = log Z - A / Z with Z = sum e_j,
 * A = sum e_j (x_j - m), e_j = exp(x_j - m), in one pass over the row: a
 * chunk with a larger max rescales the running sums (e_j -> c e_j and
 * x_j - m -> x_j - m' + (m' - m) with c = exp(m - m')). Banned tokens
 * (-inf) add 0 to both. A row with no finite max, or with a NaN, leaves a
 * non-finite lse, which the op reports. */
static void row_stats(float *lse, float *ent, const float *x, int64_t V) {
    float m = -INFINITY;
    double Z = 0.0, A = 0.0;
    for (int64_t c0 = 0; c0 < V; c0 += CHUNK) {
        const int64_t n = V - c0 < CHUNK ? V - c0 : CHUNK;
        const float cm = chunk_max(x + c0, n);
        if (cm == -INFINITY) continue;   /* every token of the chunk banned */
        if (cm > m) {
            if (Z > 0.0) {
                const double c = exp((double)m - cm);
                A = c * (A + Z * ((double)m - cm));
                Z *= c;
            }
            m = cm;
        }
        float z = 0.0f, a = 0.0f;
#pragma omp simd reduction(+ : z, a)
        for (int64_t j = c0; j < c0 + n; j++) {
            const float d = x[j] - m, e = empo_k_expf(d);
            z += e;
            a += e > 0.0f ? e * d : 0.0f;
        }
        Z += z;
        A += a;
    }
    *lse = m + (float)log(Z);
    *ent = (float)(log(Z) - A / Z);
}

static void row_forward(float *logp, float *ent, float *lse, const float *x, int64_t id, int64_t V) {
    row_stats(lse, ent, x, V);
    *logp = x[id] - *lse;
}

void empo_k_logprob_entropy_forward(float *logp, float *ent, float *lse, const float *logits,
                                    const int64_t *ids, int64_t N, int64_t V) {
    const int nt = empo_omp_threads_for(N * V * 4);   /* exp: ~4 simple ops */
    if (nt == 1) {   /* no OpenMP region for small work: entering one costs ~0.4 us */
        for (int64_t n = 0; n < N; n++) row_forward(&logp[n], &ent[n], &lse[n], logits + n * V, ids[n], V);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t n = 0; n < N; n++) row_forward(&logp[n], &ent[n], &lse[n], logits + n * V, ids[n], V);
}

/* One row of dlogits: -p * (gl + ge * (log p + H)), plus gl at the id. */
static void row_backward(float *dx, const float *x, int64_t id, float gl, float ge, float L, float H,
                         int64_t V) {
#pragma omp simd
    for (int64_t j = 0; j < V; j++) {
        const float lp = x[j] - L, p = empo_k_expf(lp);
        const float g = -p * (gl + ge * (lp + H));
        dx[j] = p > 0.0f ? g : 0.0f;   /* banned tokens: 0, not 0 * inf */
    }
    dx[id] += gl;
}

void empo_k_logprob_entropy_backward(float *dlogits, const float *dlogp, const float *dent,
                                     const float *logits, const int64_t *ids, const float *lse,
                                     const float *ent, int64_t N, int64_t V) {
    const int nt = empo_omp_threads_for(N * V * 4);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t n = 0; n < N; n++) {   /* an OpenMP region costs ~0.4 us: noise next to a training step */
        const float gl = dlogp ? dlogp[n] : 0.0f, ge = dent ? dent[n] : 0.0f, H = dent ? ent[n] : 0.0f;
        row_backward(dlogits + n * V, logits + n * V, ids[n], gl, ge, lse[n], H, V);
    }
}
