/* kv_attention.c (ref) — the naive attention of one token per row over its
 * shared prefix and its own positions: scores, softmax and weighted sum in
 * double, one query head of one row at a time, over the row's positions
 * laid end to end. The oracle for kernels/cpu/kv_attention.c. */
#include <math.h>
#include "kernels/kv_attention.h"

/* key and value rows of position s of row b's sequence, KV head h */
static void position(const float **key, const float **val, const float *pk, const float *pv, int64_t p,
                     int64_t np, const float *k, const float *v, int64_t b, int64_t h, int64_t s,
                     const empo_kv_shape *a) {
    if (s < np) {
        *key = pk + ((p * a->Hkv + h) * a->Sp + s) * a->Dh;
        *val = pv + ((p * a->Hkv + h) * a->Sp + s) * a->Dh;
    } else {
        *key = k + ((b * a->Hkv + h) * a->S + s - np) * a->Dh;
        *val = v + ((b * a->Hkv + h) * a->S + s - np) * a->Dh;
    }
}

void empo_ref_kv_attention(float *out, float *work, const float *q, const float *pk, const float *pv,
                           const int64_t *plen, const int64_t *order, const int64_t *start, const float *k,
                           const float *v, const int64_t *len, const empo_kv_shape *a) {
    (void)work;
    const int64_t g = a->Hq / a->Hkv, Dh = a->Dh;
    for (int64_t p = 0; p < a->P; p++)
        for (int64_t i = start[p]; i < start[p + 1]; i++) {
            const int64_t b = order[i], np = pk ? plen[p] : 0, n = np + len[b];
            for (int64_t h = 0; h < a->Hq; h++) {
                const float *qr = q + (b * a->Hq + h) * Dh, *key, *val;
                float *o = out + (b * a->Hq + h) * Dh;
                double m = -INFINITY, z = 0.0;
                for (int64_t s = 0; s < n; s++) {
                    position(&key, &val, pk, pv, p, np, k, v, b, h / g, s, a);
                    double sc = 0.0;
                    for (int64_t d = 0; d < Dh; d++) sc += (double)qr[d] * key[d];
                    m = fmax(m, a->scale * sc);
                }
                for (int64_t d = 0; d < Dh; d++) o[d] = 0.0f;
                for (int64_t s = 0; s < n; s++) {
                    position(&key, &val, pk, pv, p, np, k, v, b, h / g, s, a);
                    double sc = 0.0;
                    for (int64_t d = 0; d < Dh; d++) sc += (double)qr[d] * key[d];
                    z += exp(a->scale * sc - m);
                }
                for (int64_t d = 0; d < Dh; d++) {
                    double acc = 0.0;
                    for (int64_t s = 0; s < n; s++) {
                        position(&key, &val, pk, pv, p, np, k, v, b, h / g, s, a);
                        double sc = 0.0;
                        for (int64_t e = 0; e < Dh; e++) sc += (double)qr[e] * key[e];
                        acc += exp(a->scale * sc - m) / z * val[d];
                    }
                    o[d] = (float)acc;
                }
            }
        }
}
