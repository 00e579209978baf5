/* empo/decoder.h — the sampling engine's decode step in C: one token for
 * every row of the batch through the Qwen2 / Llama / Mistral decoder (the
 * stock empo.nn.Transformer: pre-norm blocks, grouped-query attention with
 * rotary embeddings, SwiGLU MLP), over the engine's two-part KV cache
 * (empo_kv_attention). The Lua model stays the definition: the engine uses
 * this only for an unmodified stock model, and a test holds the two to the
 * same logits and the same greedy tokens.
 *
 * A decoder keeps references to the weights and caches it was given, and
 * scratch for max_batch rows; each step reads the weights as they are then.
 *
 *     empo_decoder *d;
 *     empo_decoder_new(&d, &spec, max_batch);
 *     empo_decoder_prefill(d, logits, n, ids, len, slot);           // prompts into slots
 *     empo_decoder_step(d, logits, B, ids, pos, col, prow, plen);   // logits [>= B, V]
 *     empo_decoder_free(d);
 */
#ifndef EMPO_DECODE_H
#define EMPO_DECODE_H
#include "empo/tensor.h"

/* One block's weights (Hugging Face layout, contiguous: the projections
 * f32, or all bf16 with the LM head; biases may be NULL) and its part of
 * the cache: prompt_k/_v [slots, Hkv, Sp, Dh] and own_k/_v [>= max_batch,
 * Hkv, S, Dh] as empo_kv_attention takes them. */
typedef struct empo_decoder_layer_spec {
    empo_tensor *input_norm, *post_norm;   /* [D] */
    double input_eps, post_eps;
    empo_tensor *q, *q_bias, *k, *k_bias, *v, *v_bias, *o, *o_bias;   /* [Hq*Dh, D], [Hkv*Dh, D] x2, [D, Hq*Dh] */
    empo_tensor *gate, *up, *down;                                     /* [F, D], [F, D], [D, F] */
    empo_tensor *prompt_k, *prompt_v, *own_k, *own_v;
    /* LoRA adapters (empo.nn.lora), by projection (q, k, v, o, gate, up,
     * down: EMPO_LORA_* order): A [r, in] and B [out, r] f32, contiguous,
     * both or neither */
    empo_tensor *lora_a[7], *lora_b[7];
} empo_decoder_layer_spec;

typedef struct empo_decoder_spec {
    int64_t layers, heads, kv_heads;   /* head_dim comes from the cache */
    double rope_theta, norm_eps;
    empo_tensor *embed, *norm, *head;  /* [V, D], [D], [V, D] (head may be embed: tied) */
    const empo_decoder_layer_spec *layer;   /* [layers] */
    double lora_scaling;               /* the adapters' alpha / rank (any value when there are none) */
} empo_decoder_spec;

typedef struct empo_decoder empo_decoder;

/* Checks every shape, dtype and layout (errors name the layer and weight). */
int empo_decoder_new(empo_decoder **out, const empo_decoder_spec *spec, int64_t max_batch);

/* One step for rows 0 .. B-1: row b feeds token ids[b] at rope position
 * pos[b], writes its key and value at its own cache column col[b], and
 * attends to the plen[prow[b]] positions of prompt slot prow[b], then to
 * its own columns 0 .. col[b] (positions are below Sp + S, the prompt and
 * own positions the cache holds). logits f32 [>= B, V], contiguous: rows
 * 0 .. B-1 are written. Bad ids, columns, slots or lengths fail naming the
 * row, before anything is written. */
int empo_decoder_step(empo_decoder *d, empo_tensor *logits, int64_t B, const int64_t *ids, const int64_t *pos,
                      const int64_t *col, const int64_t *prow, const int64_t *plen);

/* Runs n prompts through the decoder (prefill): prompt i is len[i] tokens
 * (1 .. the slots' positions), taken one prompt after another from ids;
 * token t's key and value go to position t of prompt slot slot[i] (each
 * slot once), and logits row i gets its last token's logits (logits f32
 * [>= n, V], contiguous). The same layers as a step, causal within each
 * prompt. Bad lengths, slots or token ids fail naming the prompt, before
 * anything is written; scratch for the tokens is allocated for the call. */
int empo_decoder_prefill(empo_decoder *d, empo_tensor *logits, int64_t n, const int64_t *ids, const int64_t *len,
                         const int64_t *slot);

/* Bytes the decoder holds for its steps (scratch and rope table). */
int64_t empo_decoder_scratch_bytes(const empo_decoder *d);
/* On a GPU with EMPO_CUDA_GRAPHS=1 (read when the decoder is made): each
 * batch size's step is recorded as a CUDA graph the second time it comes
 * and replayed after (the first warms the products up); the graphs
 * recorded and the steps replayed so far. Both 0 without graphs. */
void empo_decoder_graph_counts(const empo_decoder *d, int64_t *recorded, int64_t *replayed);

void empo_decoder_free(empo_decoder *d);

#endif
