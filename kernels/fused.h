/* fused.h — raw-pointer kernels behind the fused transformer ops (f32 only):
 * RMSNorm, SwiGLU, rotary embedding, grouped-query attention and token
 * log-prob + entropy, each as a forward/backward pair.
 *
 * Every kernel exists twice with the same signature:
 *   empo_k_*    kernels/cpu/fused_*.c  OpenMP over rows/heads, vectorizable
 *                                      inner loops, f32 arithmetic;
 *   empo_ref_*  kernels/ref/fused_*.c  naive loops with double accumulation,
 *                                      the oracle the fast ones are tested on.
 * The ops (core/ops/op_fused_*.c) call them through the kernel table
 * (kernels/kernels.h).
 *
 * Conventions: pointers are contiguous row-major; the output comes first
 * (destination-passing); the comment after each pointer is its shape.
 * Kernels never allocate (what scratch they need, the caller passes) and
 * cannot fail: the ops validate shapes, dtypes and index ranges before
 * calling them. Gradient outputs are overwritten,
 * not accumulated (the autograd engine accumulates). */
#ifndef EMPO_KERNELS_FUSED_H
#define EMPO_KERNELS_FUSED_H
#include <math.h>
#include <stdint.h>
#include "kernels/host_device.h"

/* Each kernel is declared once as a function type (its one signature, with
 * the shapes), then as its two implementations of that type. */

/* ---- RMSNorm over the last dim ----
 * out = (x * rstd) * w with rstd = 1 / sqrt(mean(x^2) + eps), in that order
 * of rounding (as Hugging Face's Qwen2/Llama RMSNorm). */
typedef void empo_rmsnorm_forward_fn(float *out,          // (N, D)
                                     float *rstd,         // (N) kept for backward
                                     const float *x,      // (N, D)
                                     const float *w,      // (D)
                                     int64_t N, int64_t D, float eps);
/* dx or dw may be NULL when that gradient is not wanted. */
typedef void empo_rmsnorm_backward_fn(float *dx,          // (N, D) or NULL
                                      float *dw,          // (D) or NULL
                                      const float *dout,  // (N, D)
                                      const float *x,     // (N, D)
                                      const float *w,     // (D)
                                      const float *rstd,  // (N)
                                      int64_t N, int64_t D);
empo_rmsnorm_forward_fn empo_k_rmsnorm_forward, empo_ref_rmsnorm_forward;
empo_rmsnorm_backward_fn empo_k_rmsnorm_backward, empo_ref_rmsnorm_backward;

/* ---- SwiGLU: out = silu(gate) * up, elementwise ---- */
typedef void empo_swiglu_forward_fn(float *out,           // (n)
                                    const float *gate,    // (n)
                                    const float *up,      // (n)
                                    int64_t n);
typedef void empo_swiglu_backward_fn(float *dgate,        // (n) or NULL
                                     float *dup,          // (n) or NULL
                                     const float *dout,   // (n)
                                     const float *gate,   // (n)
                                     const float *up,     // (n)
                                     int64_t n);
empo_swiglu_forward_fn empo_k_swiglu_forward, empo_ref_swiglu_forward;
empo_swiglu_backward_fn empo_k_swiglu_backward, empo_ref_swiglu_backward;

/* ---- Rotary embedding, half-rotation layout (HF Qwen2/Llama) ----
 * For i < Dh/2 and h = Dh/2, with a = rope angle of (pos[b,t], i):
 *   out[i]     = x[i]     * cos a - x[i + h] * sin a
 *   out[i + h] = x[i + h] * cos a + x[i]     * sin a
 * Backward is the inverse rotation (angle -a), so both share one type:
 * forward maps x to out, backward maps dout to dx. Dh must be even. */
typedef void empo_rope_fn(float *out,                     // (B, H, T, Dh)
                          const float *x,                 // (B, H, T, Dh)
                          const int64_t *pos,             // (B, T)
                          int64_t B, int64_t H, int64_t T, int64_t Dh, double theta);
empo_rope_fn empo_k_rope_forward, empo_ref_rope_forward;
empo_rope_fn empo_k_rope_backward, empo_ref_rope_backward;

/* The angle of pair i at position pos: pos * theta^(-2i/Dh). It is rounded
 * the way Hugging Face computes it (inv_freq in f32, then an f32 product),
 * so that long positions rotate exactly as the checkpoints were trained;
 * both kernels share it so they agree bit for bit on the angle. */
EMPO_HOST_DEVICE static inline float empo_rope_angle(int64_t pos, int64_t i, int64_t Dh, double theta) {
    float inv_freq = 1.0f / powf((float)theta, (float)(2 * i) / (float)Dh);
    return (float)pos * inv_freq;
}

/* ---- Scaled dot-product attention with grouped KV heads ----
 * Query head h reads KV head h / (Hq / Hkv) (Hugging Face's repeat_kv).
 * Causal: query t sees keys s <= t + (S - T), so S - T cached tokens come
 * first. keep[b, s] == 0 hides key s from every query of batch row b. A
 * query that sees no key at all gets an all-zero output row and
 * lse = -INFINITY, and gets no gradient (never NaN). */
typedef struct empo_attn_shape {
    int64_t B, Hq, Hkv, T, S, Dh;
    int causal;
    float scale;                 /* applied to q . k before the softmax */
} empo_attn_shape;

/* work: scratch of empo_k_attention_work(a) floats for the fast kernels
 * (the reference ignores it and may get NULL). */
typedef void empo_attention_forward_fn(float *out,        // (B, Hq, T, Dh)
                                       float *lse,        // (B, Hq, T) log-sum-exp of scaled scores
                                       float *work,       // scratch
                                       const float *q,    // (B, Hq, T, Dh)
                                       const float *k,    // (B, Hkv, S, Dh)
                                       const float *v,    // (B, Hkv, S, Dh)
                                       const float *keep, // (B, S) nonzero = visible, or NULL
                                       const empo_attn_shape *a);
/* Probabilities are recomputed from q, k and the saved lse; out is the
 * forward's output (the fast kernel takes rowsum(dout * out) from it, the
 * reference recomputes it). Any of dq, dk, dv may be NULL. */
typedef void empo_attention_backward_fn(float *dq,          // (B, Hq, T, Dh) or NULL
                                        float *dk,          // (B, Hkv, S, Dh) or NULL
                                        float *dv,          // (B, Hkv, S, Dh) or NULL
                                        float *work,        // scratch
                                        const float *dout,  // (B, Hq, T, Dh)
                                        const float *q,     // (B, Hq, T, Dh)
                                        const float *k,     // (B, Hkv, S, Dh)
                                        const float *v,     // (B, Hkv, S, Dh)
                                        const float *out,   // (B, Hq, T, Dh)
                                        const float *keep,  // (B, S) or NULL
                                        const float *lse,   // (B, Hq, T)
                                        const empo_attn_shape *a);
empo_attention_forward_fn empo_k_attention_forward, empo_ref_attention_forward;
empo_attention_backward_fn empo_k_attention_backward, empo_ref_attention_backward;
/* floats of scratch (work) either direction needs; the reference needs none */
typedef int64_t empo_attention_work_fn(const empo_attn_shape *a);
empo_attention_work_fn empo_k_attention_work, empo_ref_attention_work;

/* ---- Token log-prob and entropy from logits ----
 * logp[n] = logits[n, ids[n]] - lse[n], ent[n] = lse[n] - sum_j p[n,j] logits[n,j].
 * Logits of -inf (banned tokens) are allowed and count as p = 0. ids must
 * be in [0, V) (the op checks). */
typedef void empo_logprob_entropy_forward_fn(float *logp,          // (N)
                                             float *ent,           // (N)
                                             float *lse,           // (N) kept for backward
                                             const float *logits,  // (N, V)
                                             const int64_t *ids,   // (N)
                                             int64_t N, int64_t V);
/* dlogits = dlogp * (onehot(ids) - p) - dent * p * (log p + ent); either
 * upstream gradient may be NULL (taken as zero; ent is only read with dent). */
typedef void empo_logprob_entropy_backward_fn(float *dlogits,       // (N, V)
                                              const float *dlogp,   // (N) or NULL
                                              const float *dent,    // (N) or NULL
                                              const float *logits,  // (N, V)
                                              const int64_t *ids,   // (N)
                                              const float *lse,     // (N)
                                              const float *ent,     // (N) or NULL
                                              int64_t N, int64_t V);
empo_logprob_entropy_forward_fn empo_k_logprob_entropy_forward, empo_ref_logprob_entropy_forward;
empo_logprob_entropy_backward_fn empo_k_logprob_entropy_backward, empo_ref_logprob_entropy_backward;

/* ---- The LM head fused with the token log-prob and entropy ----
 * logits[n, v] = scale * h[n, :] . W[v, :] for v < V (W may have more
 * rows: a padded vocabulary's are left out), scored as above — without
 * ever holding [N, V]: rows go through `chunk` at a time (work: chunk * V
 * floats). The backward recomputes each chunk's logits, turns them into
 * their gradient in place and adds that chunk's share to dh and dW:
 *   dh[n] = scale * dlogits[n] @ W,  dW += scale * dlogits^T @ h
 * (dh written, dW accumulated: zero it first; either may be NULL, not
 * wanted). dlogp / dent may be NULL as above. The fast tables build both from their gemm and log-prob kernels
 * (kernels/head_chunks.h); the reference is one row at a time in double,
 * with no chunks at all. */
typedef void empo_head_logprob_forward_fn(float *logp, float *ent, float *lse,      // (N) each
                                          const float *h,                           // (N, D)
                                          const float *W,                           // (>= V, D)
                                          const int64_t *ids,                       // (N), in [0, V)
                                          int64_t N, int64_t D, int64_t V, float scale, int64_t chunk,
                                          float *work);                             // (chunk, V)
typedef void empo_head_logprob_backward_fn(float *dh,                               // (N, D)
                                           float *dW,                               // (>= V, D) accumulated
                                           const float *dlogp, const float *dent,   // (N) or NULL
                                           const float *h, const float *W, const int64_t *ids,
                                           const float *lse, const float *ent,      // (N) from the forward
                                           int64_t N, int64_t D, int64_t V, float scale, int64_t chunk,
                                           float *work);                            // (chunk, V)
empo_head_logprob_forward_fn empo_k_head_logprob_forward, empo_ref_head_logprob_forward;
empo_head_logprob_backward_fn empo_k_head_logprob_backward, empo_ref_head_logprob_backward;

/* ---- helpers for the fast kernels ----
 * exp for float that GCC vectorizes (glibc's expf is a call, so a loop
 * that uses it stays scalar). Cephes' degree-6 polynomial after reducing
 * by n*ln2: within 2 ulp of exp over the finite range, 0 below -87.33
 * (where exp would be subnormal), +inf above 88.72, NaN for NaN. The
 * branch-free selects keep the loop if-convertible; the including file
 * must allow it with -fno-trapping-math (see kernels/cpu/fused_*.c). */
static inline float empo_k_expf(float x) {
    float t = x * 1.44269504088896341f;
    t = t > -126.0f ? t : -126.0f;            /* also maps NaN to a safe value */
    t = t < 127.0f ? t : 127.0f;
    float n = (t + 12582912.0f) - 12582912.0f;   /* round to nearest: 1.5 * 2^23 */
    float r = x - n * 0.693359375f;              /* ln2 split in two for accuracy */
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } two_n;
    two_n.i = ((int32_t)n + 127) << 23;
    float y = p * two_n.f;
    y = x < -87.33f ? 0.0f : y;
    return x > 88.72f ? INFINITY : y;
}

#endif
