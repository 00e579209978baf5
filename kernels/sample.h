/* sample.h — the sampling engine's kernels: one row of logits -> one token,
 * with its log-prob under the sampling distribution and under the
 * unmodified model (the rules are in core/empo_sample.h); and the attention
 * of a decode step over a KV cache whose rows have their own lengths.
 *
 *   empo_k_sample_row    kernels/cpu/sample.c  f32 passes that vectorize; the
 *                        top-k / top-p cut found by selection, expected O(V);
 *   empo_ref_sample_row  kernels/ref/sample.c  double, a full sort: the oracle.
 *
 * The op (core/sample.c) validates the settings and shapes; the kernels
 * cannot fail. A row with a NaN or +inf logit, or with no finite one, gives
 * id 0 and ref_logp = NaN, which the op reports. Logits of -inf (banned
 * tokens) are allowed and never drawn. */
#ifndef EMPO_KERNELS_SAMPLE_H
#define EMPO_KERNELS_SAMPLE_H
#include <stdint.h>
#include "empo_sample.h"

/* bytes of scratch one row needs */
static inline int64_t empo_sample_scratch_bytes(int64_t V) { return 16 * (V > 0 ? V : 1); }

typedef void empo_sample_row_fn(int64_t *id, float *logp, float *ref_logp,
                                const float *logits,      // (V)
                                int64_t V, const empo_sampling *s,
                                double u,                 // uniform in [0, 1)
                                void *scratch);           // empo_sample_scratch_bytes(V)
empo_sample_row_fn empo_k_sample_row, empo_ref_sample_row;

/* ---- attention of one token per row over its own cache positions ----
 * For b < B and query head h (KV head h / (Hq / Hkv)): softmax over
 * s < len[b] of scale * q[b, h] . k[b, kvh, s], then the weighted sum of
 * v[b, kvh, s]. Positions s >= len[b] are never read; len[b] = 0 gives a
 * zero row. kernels/cpu/kv_attention.c (the query heads sharing a KV head
 * together, in parallel over (b, KV head)), kernels/ref/kv_attention.c. */
typedef void empo_kv_attention_fn(float *out,          // (B, Hq, Dh)
                                  const float *q,      // (B, Hq, Dh)
                                  const float *k,      // (B, Hkv, S, Dh)
                                  const float *v,      // (B, Hkv, S, Dh)
                                  const int64_t *len,  // (B)
                                  int64_t B, int64_t Hq, int64_t Hkv, int64_t S, int64_t Dh, float scale);
empo_kv_attention_fn empo_k_kv_attention, empo_ref_kv_attention;

#endif
