/* fused_attention.c (ref) — naive reference kernels for grouped-query
 * attention: every score recomputed from q and k in double whenever it is
 * needed, the softmax of each row from its own max and sum (the saved lse
 * is not trusted). Hidden keys are never read, so an unused KV-cache slot
 * may hold anything. Slow on purpose; the oracle for kernels/cpu. */
#include "kernels/fused.h"

/* Scaled score of query row r against key s of KV head kvh, or -inf when
 * key s is not visible to query t. */
static double ref_score(const float *q, const float *k, const float *keep,
                        const empo_attn_shape *a, int64_t b, int64_t h, int64_t t, int64_t s) {
    const int64_t kvh = h / (a->Hq / a->Hkv);
    if (a->causal && s > t + (a->S - a->T)) return -INFINITY;
    if (keep && keep[b * a->S + s] == 0.0f) return -INFINITY;
    const float *qr = q + ((b * a->Hq + h) * a->T + t) * a->Dh;
    const float *kr = k + ((b * a->Hkv + kvh) * a->S + s) * a->Dh;
    double dot = 0.0;
    for (int64_t d = 0; d < a->Dh; d++) dot += (double)qr[d] * kr[d];
    return dot * a->scale;
}

/* Log-sum-exp of the visible scores of row (b, h, t); -inf if none. */
static double ref_lse(const float *q, const float *k, const float *keep,
                      const empo_attn_shape *a, int64_t b, int64_t h, int64_t t) {
    double m = -INFINITY, z = 0.0;
    for (int64_t s = 0; s < a->S; s++) {
        double sc = ref_score(q, k, keep, a, b, h, t, s);
        m = sc > m ? sc : m;
    }
    if (m == -INFINITY) return -INFINITY;
    for (int64_t s = 0; s < a->S; s++) z += exp(ref_score(q, k, keep, a, b, h, t, s) - m);
    return m + log(z);
}

void empo_ref_attention_forward(float *out, float *lse, float *work, const float *q, const float *k,
                                const float *v, const float *keep, const empo_attn_shape *a) {
    (void)work;
    const int64_t rep = a->Hq / (a->Hkv > 0 ? a->Hkv : 1), Dh = a->Dh;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->Hq; h++)
            for (int64_t t = 0; t < a->T; t++) {
                const int64_t r = (b * a->Hq + h) * a->T + t;
                const float *vh = v + (b * a->Hkv + h / rep) * a->S * Dh;
                double L = ref_lse(q, k, keep, a, b, h, t);
                lse[r] = (float)L;
                for (int64_t d = 0; d < Dh; d++) {
                    double acc = 0.0;   /* stays 0 for a row with no visible key */
                    for (int64_t s = 0; L > -INFINITY && s < a->S; s++) {
                        double sc = ref_score(q, k, keep, a, b, h, t, s);
                        if (sc > -INFINITY) acc += exp(sc - L) * vh[s * Dh + d];   /* hidden v may be NaN */
                    }
                    out[r * Dh + d] = (float)acc;
                }
            }
}

/* Gradients of one query row: p_s = exp(score_s - L), dp_s = dout . v_s,
 * ds_s = p_s (dp_s - sum_u p_u dp_u); dq += scale ds_s k_s,
 * dk_s += scale ds_s q, dv_s += p_s dout. */
static void ref_row_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                             const float *k, const float *v, const float *keep,
                             const empo_attn_shape *a, int64_t b, int64_t h, int64_t t) {
    const int64_t Dh = a->Dh, kvh = h / (a->Hq / a->Hkv);
    const int64_t r = (b * a->Hq + h) * a->T + t, kv0 = (b * a->Hkv + kvh) * a->S;
    const double L = ref_lse(q, k, keep, a, b, h, t);
    if (L == -INFINITY) return;
    const float *g = dout + r * Dh, *qr = q + r * Dh;
    double delta = 0.0;
    for (int64_t s = 0; s < a->S; s++) {
        double sc = ref_score(q, k, keep, a, b, h, t, s), dp = 0.0;
        if (sc == -INFINITY) continue;   /* hidden keys are never read */
        for (int64_t d = 0; d < Dh; d++) dp += (double)g[d] * v[(kv0 + s) * Dh + d];
        delta += exp(sc - L) * dp;
    }
    for (int64_t s = 0; s < a->S; s++) {
        double sc = ref_score(q, k, keep, a, b, h, t, s), p = exp(sc - L), dp = 0.0;
        if (sc == -INFINITY) continue;
        for (int64_t d = 0; d < Dh; d++) dp += (double)g[d] * v[(kv0 + s) * Dh + d];
        double ds = p * (dp - delta) * a->scale;
        for (int64_t d = 0; d < Dh; d++) {
            if (dq) dq[r * Dh + d] += (float)(ds * k[(kv0 + s) * Dh + d]);
            if (dk) dk[(kv0 + s) * Dh + d] += (float)(ds * qr[d]);
            if (dv) dv[(kv0 + s) * Dh + d] += (float)(p * g[d]);
        }
    }
}

void empo_ref_attention_backward(float *dq, float *dk, float *dv, float *work, const float *dout,
                                 const float *q, const float *k, const float *v, const float *out,
                                 const float *keep, const float *lse, const empo_attn_shape *a) {
    (void)work, (void)out;   /* delta is recomputed from the probabilities, not trusted from out */
    const int64_t nq = a->B * a->Hq * a->T * a->Dh, nkv = a->B * a->Hkv * a->S * a->Dh;
    for (int64_t i = 0; dq && i < nq; i++) dq[i] = 0.0f;
    for (int64_t i = 0; dk && i < nkv; i++) dk[i] = 0.0f;
    for (int64_t i = 0; dv && i < nkv; i++) dv[i] = 0.0f;
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t h = 0; h < a->Hq; h++)
            for (int64_t t = 0; t < a->T; t++)
                ref_row_backward(dq, dk, dv, dout, q, k, v, keep, a, b, h, t);
}
