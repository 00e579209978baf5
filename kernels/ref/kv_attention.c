/* kv_attention.c (ref) — the naive attention of one token per row over its
 * own KV-cache positions: scores, softmax and weighted sum in double, one
 * query head at a time. The oracle for kernels/cpu/kv_attention.c. */
#include <math.h>
#include <string.h>
#include "internal.h"
#include "sample.h"

void empo_ref_kv_attention(float *out, const float *q, const float *k, const float *v, const int64_t *len,
                           int64_t B, int64_t Hq, int64_t Hkv, int64_t S, int64_t Dh, float scale) {
    const int64_t g = Hq / Hkv;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++) {
            const float *qr = q + (b * Hq + h) * Dh;
            const float *K = k + (b * Hkv + h / g) * S * Dh, *V = v + (b * Hkv + h / g) * S * Dh;
            float *o = out + (b * Hq + h) * Dh;
            double m = -INFINITY, z = 0.0;
            for (int64_t s = 0; s < len[b]; s++) {
                double sc = 0.0;
                for (int64_t d = 0; d < Dh; d++) sc += (double)qr[d] * K[s * Dh + d];
                m = fmax(m, scale * sc);
            }
            for (int64_t d = 0; d < Dh; d++) o[d] = 0.0f;
            if (len[b] == 0) continue;
            double acc[Dh > 0 ? Dh : 1];
            memset(acc, 0, sizeof acc);
            for (int64_t s = 0; s < len[b]; s++) {
                double sc = 0.0;
                for (int64_t d = 0; d < Dh; d++) sc += (double)qr[d] * K[s * Dh + d];
                const double p = exp(scale * sc - m);
                z += p;
                for (int64_t d = 0; d < Dh; d++) acc[d] += p * V[s * Dh + d];
            }
            for (int64_t d = 0; d < Dh; d++) o[d] = (float)(acc[d] / z);
        }
}
