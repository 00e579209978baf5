/* empo/sample.h — the per-token math of the sampling engine, and the KV
 * cache of its batch (rows at their own lengths: append, move, attend). The generation loop is Lua (lua/empo/generate/sample.lua)
 * around the model's one definition; what it does per token is here.
 *
 * One row of logits [V] becomes one token:
 *   1. ref_logp = log_softmax(logits)[id]: the unmodified model (T = 1, no
 *      truncation), the trainer's "old" log-prob.
 *   2. temperature 0 is greedy: id = argmax (lowest id among ties), logp = 0.
 *   3. otherwise p = softmax(logits / T), and tokens are kept by, in order:
 *        top_k  the k most likely (with every token tied with the k-th);
 *        top_p  the fewest most likely tokens whose mass, renormalised over
 *               what top_k kept, reaches top_p (with ties of the last one);
 *        min_p  p >= min_p * max p.
 *      The kept mass is renormalised and the token drawn with one uniform u
 *      in [0, 1): the lowest id whose cumulative kept mass (ids ascending)
 *      exceeds u. logp = log of its renormalised probability.
 * With s.vocab > 0 only the ids below it exist: every step above (and
 * ref_logp) sees logits[0 .. vocab-1] of each row. Qwen2.5's embedding has
 * 271 rows past its tokenizer's last id, and a draw of one is an id no
 * tokenizer can decode.
 * The uniform is an argument (as in llama2.c's sampler), so a draw is a
 * pure function of (logits, settings, u). The engine derives u per sequence
 * and token from Philox with empo_sample_uniforms, so a sequence's tokens
 * never depend on which other sequences share its batch.
 *
 *     empo_sampling s = {1.0, 0, 0.95, 0.0};          // T, top_k, top_p, min_p
 *     double u[N];
 *     empo_sample_uniforms(u, N, seed, streams, counters);
 *     empo_sample(ids, logp, ref_logp, logits, &s, u); // logits [N, V] -> ids [N]
 */
#ifndef EMPO_SAMPLE_H
#define EMPO_SAMPLE_H
#include "empo/tensor.h"

typedef struct empo_sampling {
    double temperature;   /* >= 0; 0 = greedy */
    int64_t top_k;        /* >= 0; 0 = off */
    double top_p;         /* in (0, 1]; 1 = off */
    double min_p;         /* in [0, 1]; 0 = off */
    int64_t vocab;        /* ids >= vocab are never drawn (0 = all): a model's padded
                             embedding rows past its tokenizer's last id */
} empo_sampling;

/* EMPO_OK, or EMPO_E_ARG naming the bad setting and its value. */
int empo_sampling_check(const empo_sampling *s);

/* u[i] in [0, 1) (53 bits) from Philox-4x32-10 with key seed and 128-bit
 * counter (stream[i], counter[i]). The engine uses stream = the prompt's
 * key and counter = (sample index << 32) | token index. */
void empo_sample_uniforms(double *u, int64_t n, uint64_t seed, const uint64_t *stream,
                          const uint64_t *counter);

/* One token per row. logits f32 [..., V] (contiguous, N rows); ids i64 with
 * N elements (e.g. [N] or [N, 1], contiguous) receives the tokens; logp and
 * ref_logp f32 with N elements (contiguous) or NULL. u: N uniforms, unused
 * (may be NULL) when greedy. Fails with EMPO_E_NUMERIC naming the row when
 * a row has a NaN or +inf, or no finite logit. Rows run in parallel. */
int empo_sample(empo_tensor *ids, empo_tensor *logp, empo_tensor *ref_logp, empo_tensor *logits,
                const empo_sampling *s, const double *u);

/* Per row of logits f32 [..., V] (contiguous, N rows), of p = softmax(logits
 * / T) before any truncation (T = 0 counts as 1) over ids below vocab (0 = all): entropy = -sum p log p and
 * self_certainty = KL(uniform || p) = -log V - mean log p, f32 with N
 * elements each, or NULL. What the label-free token rewards read (RENT,
 * Intuitor), from the logits the sampler already has. */
int empo_sample_token_stats(empo_tensor *entropy, empo_tensor *self_certainty, empo_tensor *logits,
                            double temperature, int64_t vocab);

/* ---- KV-cache rows (caches f32 [B, H, S, Dh], contiguous) ---- */

/* cache[b, :, pos[b] + t, :] = x[b, :, t, :] for b < B: appends x f32
 * [B, H, T, Dh] (any strides) at each row's own position. cache may have
 * more rows than x. */
int empo_kv_write(empo_tensor *cache, empo_tensor *x, const int64_t *pos);
/* dst[dst_rows[i], :, :cols, :] = src[src_rows[i], :, :cols, :] for i < n,
 * in order (dst may be src: moving rows within one cache). dst and src
 * agree in H and Dh; cols fits both. */
int empo_kv_copy_rows(empo_tensor *dst, empo_tensor *src, int64_t n, const int64_t *dst_rows,
                      const int64_t *src_rows, int64_t cols);
/* The attention of one new token per row over its sequence, kept in two
 * parts: a prefix shared by rows (the prompt, cached once for all samples
 * of a prompt) and the row's own positions (its generated tokens). Row b
 * attends to positions 0 .. plen[prow[b]]-1 of prefix row prow[b] of pk,
 * pv [P, Hkv, Sp, Dh], then to positions 0 .. len[b]-1 of row b of k, v
 * [>= B, Hkv, S, Dh]; query head h reads KV head h / (Hq / Hkv). This is
 * empo_attention(q, keys, values, causal = 0, scale, key_mask) over each
 * row's keys laid end to end with the hidden ones masked, except that
 * hidden positions are never read and the rows sharing a prefix row read
 * it once, together. pk, pv, prow and plen may all be NULL (no prefix).
 * q f32 [B, Hq, 1, Dh] (any strides); scale <= 0 means 1/sqrt(Dh). A row
 * with no position at all gets zeros. -> out [B, Hq, 1, Dh]. No gradient
 * (decoding only). */
int empo_kv_attention(empo_tensor **out, empo_tensor *q, empo_tensor *pk, empo_tensor *pv, const int64_t *prow,
                      const int64_t *plen, empo_tensor *k, empo_tensor *v, const int64_t *len, double scale);

#endif
