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

/* ---- a batch of rows: what the sample op calls ----
 * N rows, row n at logits + n * stride with its first V ids drawable, one
 * token each, as sample_row. u: N uniforms in host memory (NULL when
 * greedy); the other arrays are the table's memory (a device table's:
 * device pointers). logp and ref_logp may be NULL. *bad: the first row
 * with a NaN or +inf logit or no finite one, else -1. Returns 0, or -1
 * when it could not run (scratch, the device: no output is then valid).
 *   empo_k_sample_rows, empo_ref_sample_rows  the CPU tables: rows in
 *       parallel through their sample_row (empo_sample_rows_cpu);
 *   the CUDA table: a block per row (kernels/cuda/sample.cu). */
typedef int empo_sample_rows_fn(int64_t *ids, float *logp, float *ref_logp, const float *logits, int64_t N,
                                int64_t V, int64_t stride, const empo_sampling *s, const double *u, int64_t *bad);
empo_sample_rows_fn empo_k_sample_rows, empo_ref_sample_rows;
int empo_sample_rows_cpu(empo_sample_row_fn *row, int64_t *ids, float *logp, float *ref_logp, const float *logits,
                         int64_t N, int64_t V, int64_t stride, const empo_sampling *s, const double *u,
                         int64_t *bad);

/* Per row, of p = softmax(x * inv_t) over the row's first V logits (row n
 * at logits + n * stride): entropy = -sum p log p and certainty =
 * KL(uniform || p) = log Z - mean z - log V (z = x * inv_t), each array
 * [N] or NULL; memory as sample_rows'. Returns the first row whose log Z
 * is not finite, -1 when none, -2 when it could not run. Every CPU table
 * runs empo_ref_sample_stats (two passes in double, rows in parallel). */
typedef int64_t empo_sample_stats_fn(float *entropy, float *certainty, const float *logits, int64_t N, int64_t V,
                                     int64_t stride, double inv_t);
empo_sample_stats_fn empo_ref_sample_stats;

#endif
