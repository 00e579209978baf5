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

/* ---- attention of one token per row over a shared prefix and its own positions ----
 * Prefix row p (plen[p] positions) is shared by the rows order[start[p]
 * .. start[p+1]); row b also has its own len[b] positions. Each query
 * head h (KV head h / (Hq / Hkv)) gets the softmax over all of the row's
 * positions of scale * q . k, then the weighted sum of their values.
 * Hidden positions are never read; a row with no position gets zeros.
 * pk/pv NULL: no prefix (plen is then ignored, groups still come from
 * order/start). kernels/cpu/kv_attention.c (one task per prefix row, KV
 * head and block of query heads of its rows, which read the prefix once),
 * kernels/ref/kv_attention.c. */
typedef struct empo_kv_shape {
    int64_t B, Hq, Hkv, Dh;
    int64_t P, Sp;   /* prefix rows and their capacity in positions */
    int64_t S;       /* capacity of the own positions */
    float scale;
} empo_kv_shape;

typedef void empo_kv_attention_fn(float *out,            // (B, Hq, Dh)
                                  float *work,           // empo_k_kv_attention_work(a) floats (ref: unused)
                                  const float *q,        // (B, Hq, Dh)
                                  const float *pk,       // (P, Hkv, Sp, Dh) or NULL
                                  const float *pv,       // (P, Hkv, Sp, Dh) or NULL
                                  const int64_t *plen,   // (P)
                                  const int64_t *order,  // (B) rows grouped by prefix row
                                  const int64_t *start,  // (P + 1) group bounds in order
                                  const float *k,        // (B, Hkv, S, Dh)
                                  const float *v,        // (B, Hkv, S, Dh)
                                  const int64_t *len,    // (B)
                                  const empo_kv_shape *a);
empo_kv_attention_fn empo_k_kv_attention, empo_ref_kv_attention;
int64_t empo_k_kv_attention_work(const empo_kv_shape *a);
int64_t empo_k_kv_attention_work_for(const empo_kv_shape *a, int threads);   /* for a team of that size */
/* For a caller's own parallel region (the C decode step): the number of
 * empo_k_kv_attention's tasks, and tasks lo .. hi-1 on this thread (which
 * thread runs a task does not change its numbers). Work as above, one
 * slice per OpenMP thread number. */
int64_t empo_k_kv_attention_tasks(const int64_t *start, const empo_kv_shape *a);

/* A prefill's attention (the C decoder's prefill, kernels/decode.h): n
 * prompts whose tokens are rows start[i] .. start[i+1]-1 of q and out
 * (B = start[n] rows, [B, Hq, Dh]) and whose keys and values, position t
 * for token t, are already in prompt slot slot[i] of pk/pv (P, Hkv, Sp,
 * Dh); each query attends causally to its prompt's positions 0 .. its
 * own. last_only: only each prompt's last token, whose query and output
 * are row i of q and out (n rows). empo_k_kv_prefill_tasks fills
 * task_start [n + 1] and returns the task count; empo_k_kv_prefill_range
 * runs tasks lo .. hi-1 on this thread (work as empo_k_kv_attention's, a
 * slice per thread number). */
typedef struct empo_kv_prompts {
    int64_t n;
    const int64_t *start, *slot;
    int last_only;
} empo_kv_prompts;
int64_t empo_k_kv_prefill_tasks(int64_t *task_start, const empo_kv_prompts *p, const empo_kv_shape *a);
void empo_k_kv_prefill_range(int64_t lo, int64_t hi, float *out, float *work, const float *q, const float *pk,
                             const float *pv, const empo_kv_prompts *p, const int64_t *task_start,
                             const empo_kv_shape *a);
void empo_k_kv_attention_range(int64_t lo, int64_t hi, float *out, float *work, const float *q, const float *pk,
                               const float *pv, const int64_t *plen, const int64_t *order, const int64_t *start,
                               const float *k, const float *v, const int64_t *len, const empo_kv_shape *a);

#endif
