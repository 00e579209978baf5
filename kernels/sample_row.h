/* sample_row.h — the sampler's kernel: one row of logits -> one token,
 * with its log-prob under the sampling distribution and under the
 * unmodified model (the rules are in core/include/empo/sample.h).
 *
 *   empo_k_sample_row    kernels/cpu/sample_row.c  f32 passes that vectorize;
 *                        the top-k / top-p cut found by selection, expected O(V);
 *   empo_ref_sample_row  kernels/ref/sample_row.c  double, a full sort: the oracle.
 *
 * The op (core/generate/sample.c) validates the settings and shapes; the kernels
 * cannot fail. A row with a NaN or +inf logit, or with no finite one, gives
 * id 0 and ref_logp = NaN, which the op reports. Logits of -inf (banned
 * tokens) are allowed and never drawn. */
#ifndef EMPO_KERNELS_SAMPLE_ROW_H
#define EMPO_KERNELS_SAMPLE_ROW_H
#include <stdint.h>
#include "empo/sample.h"

/* bytes of scratch one row needs */
static inline int64_t empo_sample_scratch_bytes(int64_t V) { return 16 * (V > 0 ? V : 1); }

typedef void empo_sample_row_fn(int64_t *id, float *logp, float *ref_logp,
                                const float *logits,      // (V)
                                int64_t V, const empo_sampling *s,
                                double u,                 // uniform in [0, 1)
                                void *scratch);           // empo_sample_scratch_bytes(V)
empo_sample_row_fn empo_k_sample_row, empo_ref_sample_row;

#endif
