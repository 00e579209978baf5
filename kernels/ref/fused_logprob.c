/* fused_logprob.c (ref) — naive reference kernels for token log-prob and
 * entropy: a max pass, then the softmax in double, term by term. The
 * oracle for kernels/cpu/fused_logprob.c. */
#include "kernels/fused.h"

void empo_ref_logprob_entropy_forward(float *logp, float *ent, float *lse, const float *logits,
                                      const int64_t *ids, int64_t N, int64_t V) {
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        double m = -INFINITY, z = 0.0, h = 0.0;
        for (int64_t j = 0; j < V; j++) m = x[j] > m ? x[j] : m;
        for (int64_t j = 0; j < V; j++) z += exp(x[j] - m);
        double L = m + log(z);
        for (int64_t j = 0; j < V; j++) {
            double p = exp(x[j] - L);
            if (p > 0.0) h -= p * (x[j] - L);   /* p log p -> 0 as p -> 0 */
        }
        lse[n] = (float)L;
        ent[n] = (float)h;
        logp[n] = (float)(x[ids[n]] - L);
    }
}

void empo_ref_logprob_entropy_backward(float *dlogits, const float *dlogp, const float *dent,
                                       const float *logits, const int64_t *ids,
                                       const float *lse, const float *ent, int64_t N, int64_t V) {
    for (int64_t n = 0; n < N; n++) {
        double gl = dlogp ? dlogp[n] : 0.0, ge = dent ? dent[n] : 0.0;
        double L = lse[n], H = dent ? ent[n] : 0.0;
        for (int64_t j = 0; j < V; j++) {
            double lp = logits[n * V + j] - L, p = exp(lp);
            double g = (j == ids[n] ? gl : 0.0) - gl * p;      /* d logp */
            if (p > 0.0) g -= ge * p * (lp + H);               /* d entropy */
            dlogits[n * V + j] = (float)g;
        }
    }
}
