/* kv_attention.h — attention of the sampling batch's new tokens over a KV
 * cache: a decode step's one token per row over a shared prompt prefix and
 * the row's own positions (empo_kv_attention in core/generate/kv_cache.c,
 * and the C decode step), and a prefill's prompts, causally. */
#ifndef EMPO_KERNELS_KV_ATTENTION_H
#define EMPO_KERNELS_KV_ATTENTION_H
#include <stdint.h>

/* ---- one token per row over a shared prefix and its own positions ----
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
/* floats of work the kernel needs (the reference: none) */
typedef int64_t empo_kv_attention_work_fn(const empo_kv_shape *a);
empo_kv_attention_work_fn empo_k_kv_attention_work, empo_ref_kv_attention_work;
int64_t empo_k_kv_attention_work_for(const empo_kv_shape *a, int threads);   /* for a team of that size */
/* For a caller's own parallel region (the C decode step): the number of
 * empo_k_kv_attention's tasks, and tasks lo .. hi-1 on this thread (which
 * thread runs a task does not change its numbers). Work as above, one
 * slice per OpenMP thread number. */
int64_t empo_k_kv_attention_tasks(const int64_t *start, const empo_kv_shape *a);

/* A prefill's attention (the C decoder's prefill, kernels/decode_step.h): n
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
