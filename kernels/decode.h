/* decode.h — one decode step of the Qwen2 / Llama / Mistral decoder (the
 * stock empo.nn.Transformer) over the sampling batch's cache, in one
 * OpenMP parallel region: the same arithmetic as the Lua model's layers
 * (RMSNorm, projections with optional biases, rotary embeddings, grouped
 * attention over a shared prompt and each row's own positions, SwiGLU,
 * residuals, final norm, LM head), the phases separated by barriers
 * instead of ~17 ops per layer each entering and leaving the thread team.
 * The op (core/decode.c) validates everything; the kernel cannot fail.
 *
 * Row b feeds token ids[b] at rope position pos[b]; its key and value go
 * to its own cache column col[b], and it attends to prompt slot prow[b]'s
 * plen[prow[b]] positions, then to its own columns 0 .. col[b]. */
#ifndef EMPO_KERNELS_DECODE_H
#define EMPO_KERNELS_DECODE_H
#include <stdint.h>

typedef struct empo_decode_layer {
    const float *input_norm, *post_norm;                  /* [D] */
    const float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo;   /* [out, in]; biases [out] or NULL */
    const float *wg, *wu, *wd;                            /* [F, D], [F, D], [D, F] */
    float input_eps, post_eps;
    const float *pk, *pv;                                 /* prompt cache [slots, Hkv, Sp, Dh] */
    float *k, *v;                                         /* own cache [rows, Hkv, S, Dh] */
} empo_decode_layer;

typedef struct empo_decode_model {
    int64_t L, D, Hq, Hkv, Dh, F, V;
    int64_t slots, Sp, S;     /* prompt slots and positions; own positions */
    int threads;              /* the most threads a step uses (its scratch is sized for them) */
    double theta;
    float norm_eps;
    const float *embed, *norm, *head;   /* [V, D], [D], [V, D] */
    const empo_decode_layer *layer;     /* [L] */
} empo_decode_model;

/* Scratch of empo_decode_scratch_floats(m, rows) floats (for m->threads
 * threads), and the row
 * grouping of empo_kv_group_rows (order [B + 1], start [slots + 2]). */
typedef struct empo_decode_batch {
    int64_t B;
    const int64_t *ids, *pos, *col, *prow, *plen;
    const int64_t *order, *start;
    int64_t *lens;       /* [B] scratch: col + 1 */
    uint64_t *claims;    /* [threads * EMPO_TEAM_STRIDE], zeroed once: the step team's work shares (team.h) */
} empo_decode_batch;

int64_t empo_decode_scratch_floats(const empo_decode_model *m, int64_t rows);
/* Fills the scratch's rope table (cos and sin of positions 0 .. Sp + S - 1,
 * as the model's rope computes them): once, before the first step. */
void empo_decode_rope_table(float *scratch, const empo_decode_model *m);

/* logits [B, V] (row-major) for the batch; scratch as above. */
void empo_k_decode_step(float *logits, float *scratch, const empo_decode_model *m, const empo_decode_batch *b);

#endif
