/* decode_step.h — one decode step of the Qwen2 / Llama / Mistral decoder (the
 * stock empo.nn.Transformer) over the sampling batch's cache, in one
 * OpenMP parallel region: the same arithmetic as the Lua model's layers
 * (RMSNorm, projections with optional biases, rotary embeddings, grouped
 * attention over a shared prompt and each row's own positions, SwiGLU,
 * residuals, final norm, LM head), the phases separated by barriers
 * instead of ~17 ops per layer each entering and leaving the thread team.
 * The op (core/generate/decoder.c) validates everything; the kernel cannot
 * fail. There is no naive C version: the Lua model is its reference (the
 * reference table runs this one; tests/generate/test_decode.lua compares
 * the two).
 *
 * Row b feeds token ids[b] at rope position pos[b]; its key and value go
 * to its own cache column col[b], and it attends to prompt slot prow[b]'s
 * plen[prow[b]] positions, then to its own columns 0 .. col[b]. */
#ifndef EMPO_KERNELS_DECODE_STEP_H
#define EMPO_KERNELS_DECODE_STEP_H
#include <stdint.h>

/* A projection's LoRA update (empo.nn.lora): y += scaling (x A^T) B^T with
 * A [rank, in] and B [out, rank] f32, scaling the model's; rank 0: none. */
typedef struct empo_decode_lora {
    const float *a, *b;
    int64_t rank;
} empo_decode_lora;

enum { EMPO_LORA_Q, EMPO_LORA_K, EMPO_LORA_V, EMPO_LORA_O, EMPO_LORA_GATE, EMPO_LORA_UP, EMPO_LORA_DOWN,
       EMPO_LORA_SLOTS };

/* The projection weights and the LM head are f32, or with the model's
 * bf16 flag all bfloat16 (uint16_t: the sampler's lighter copy, or a LoRA
 * run's frozen base, read through the panel products' _bf16 variants);
 * norms and biases are f32 either way, the embedding f32 or (embed_bf16)
 * bf16. */
typedef struct empo_decode_layer {
    const float *input_norm, *post_norm;                  /* [D] */
    const void *wq, *wk, *wv, *wo;                        /* [out, in] */
    const float *bq, *bk, *bv, *bo;                       /* biases [out] or NULL */
    const void *wg, *wu, *wd;                             /* [F, D], [F, D], [D, F] */
    float input_eps, post_eps;
    float *pk, *pv;                                       /* prompt cache [slots, Hkv, Sp, Dh] (prefill writes it) */
    float *k, *v;                                         /* own cache [rows, Hkv, S, Dh] */
    empo_decode_lora lora[EMPO_LORA_SLOTS];               /* (last: see empo_decode_model's bf16) */
} empo_decode_layer;

typedef struct empo_decode_model {
    int64_t L, D, Hq, Hkv, Dh, F, V;
    int64_t slots, Sp, S;     /* prompt slots and positions; own positions */
    int threads;              /* the most threads a step uses (its scratch is sized for them) */
    double theta;
    float norm_eps;
    const void *embed;                  /* [V, D] f32, or bf16 (embed_bf16) */
    const float *norm;                  /* [D] */
    const void *head;                   /* [V, D] */
    const float *rope;                  /* [Sp + S, Dh]: cos | sin of each position (empo_decode_rope_table) */
    const empo_decode_layer *layer;     /* [L] */
    int bf16;                           /* weights and head in bf16 (last: the A/B harness's older kernels ignore it) */
    int embed_bf16;                     /* the embedding in bf16 */
    int64_t lora_rank;                  /* the largest LoRA rank of any projection (0: no adapters) */
    int lora_mlp;                       /* some gate or up projection has an adapter (scratch for their rows) */
    float lora_scaling;
} empo_decode_model;

/* Scratch of empo_decode_scratch_floats(m, rows) floats (for m->threads
 * threads), and the row
 * grouping of empo_kv_group_rows (order [B + 1], start [slots + 2]). */
typedef struct empo_decode_batch {
    int64_t B;
    const int64_t *ids, *pos, *col, *prow, *plen;
    const int64_t *order, *start;
    int64_t *lens;       /* [B] scratch: col + 1 */
    uint64_t *claims;    /* [empo_team_words(threads)], zeroed once: the team's work shares (team.h) */
} empo_decode_batch;

typedef int64_t empo_decode_scratch_fn(const empo_decode_model *m, int64_t rows);
empo_decode_scratch_fn empo_decode_scratch_floats;
/* Fills a rope table (Sp + S rows of Dh floats: cos and sin of positions
 * 0 .. Sp + S - 1, as the model's rope computes them). */
void empo_decode_rope_table(float *table, const empo_decode_model *m);

/* logits [B, V] (row-major) for the batch; scratch as above. */
typedef void empo_decode_step_fn(float *logits, float *scratch, const empo_decode_model *m, const empo_decode_batch *b);
empo_decode_step_fn empo_k_decode_step;

/* A prefill: n prompts, their tokens as rows start[i] .. start[i+1]-1
 * (R = start[n] rows, each prompt at least one token, at most Sp), through
 * the same layers: token t of prompt i at rope position t, its key and
 * value written to position t of prompt slot slot[i], attending causally
 * to its prompt's positions 0 .. t. logits [n, V]: each prompt's last
 * token. Scratch: empo_decode_scratch_floats(m, R) floats. */
typedef struct empo_prefill_batch {
    int64_t n;
    const int64_t *ids, *start, *slot;
    int64_t *task_start, *prompt_of;   /* scratch: [2 (n + 1)] (all tokens', last tokens' tasks), [R] */
    uint64_t *claims;                  /* as empo_decode_batch's */
    int64_t rows;                      /* R (= start[n]), for a device whose kernels cannot read start;
                                          a device's prompt_of is filled by the op: token r's prompt */
} empo_prefill_batch;

typedef void empo_decode_prefill_fn(float *logits, float *scratch, const empo_decode_model *m,
                                    const empo_prefill_batch *b);
empo_decode_prefill_fn empo_k_decode_prefill;

#endif
