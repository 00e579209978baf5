/* empo/ops.h — differentiable operations.
 *
 * Destination-passing: the first argument receives a new tensor (one
 * reference). Inputs are never modified. Every op validates shapes and
 * dtypes first and, on a mismatch, fails with a message naming the op and
 * the shapes, e.g. "matmul: [4 x 3] @ [5 x 2]: inner sizes differ (3 vs 5)".
 * Floating-point ops compute in f32 (and f64 where noted); integer tensors
 * serve as ids, indices and masks. Negative dims count from the end. */
#ifndef EMPO_OPS_H
#define EMPO_OPS_H
#include "empo/tensor.h"

/* --- elementwise, with numpy/PyTorch broadcasting --- */
int empo_add(empo_tensor **out, empo_tensor *a, empo_tensor *b);
int empo_sub(empo_tensor **out, empo_tensor *a, empo_tensor *b);
int empo_mul(empo_tensor **out, empo_tensor *a, empo_tensor *b);
int empo_div(empo_tensor **out, empo_tensor *a, empo_tensor *b);
int empo_pow(empo_tensor **out, empo_tensor *a, empo_tensor *b);   /* a > 0 where b is not an integer */
int empo_maximum(empo_tensor **out, empo_tensor *a, empo_tensor *b);
int empo_minimum(empo_tensor **out, empo_tensor *a, empo_tensor *b);

/* a (op) s and s (op) a for a scalar s */
int empo_add_scalar(empo_tensor **out, empo_tensor *a, double s);
int empo_mul_scalar(empo_tensor **out, empo_tensor *a, double s);
int empo_pow_scalar(empo_tensor **out, empo_tensor *a, double s);
int empo_rsub_scalar(empo_tensor **out, empo_tensor *a, double s);   /* s - a */
int empo_rdiv_scalar(empo_tensor **out, empo_tensor *a, double s);   /* s / a */
int empo_clamp(empo_tensor **out, empo_tensor *a, double lo, double hi);

/* comparisons give u8 masks (no gradient) */
int empo_eq(empo_tensor **out, empo_tensor *a, empo_tensor *b);
int empo_lt(empo_tensor **out, empo_tensor *a, empo_tensor *b);
int empo_gt(empo_tensor **out, empo_tensor *a, empo_tensor *b);

/* --- unary --- */
int empo_neg(empo_tensor **out, empo_tensor *a);
int empo_exp(empo_tensor **out, empo_tensor *a);
int empo_log(empo_tensor **out, empo_tensor *a);
int empo_sqrt(empo_tensor **out, empo_tensor *a);
int empo_rsqrt(empo_tensor **out, empo_tensor *a);
int empo_tanh(empo_tensor **out, empo_tensor *a);
int empo_sigmoid(empo_tensor **out, empo_tensor *a);
int empo_silu(empo_tensor **out, empo_tensor *a);
int empo_relu(empo_tensor **out, empo_tensor *a);
int empo_abs(empo_tensor **out, empo_tensor *a);
/* exact (erf) GELU, or the tanh approximation when approximate != 0 */
int empo_gelu(empo_tensor **out, empo_tensor *a, int approximate);

/* --- reductions --- */
int empo_sum(empo_tensor **out, empo_tensor *x);                          /* all -> scalar */
int empo_mean(empo_tensor **out, empo_tensor *x);
int empo_sum_dim(empo_tensor **out, empo_tensor *x, int dim, int keepdim);
int empo_mean_dim(empo_tensor **out, empo_tensor *x, int dim, int keepdim);
/* values (differentiable) and i64 indices of the max along dim */
int empo_max_dim(empo_tensor **values, empo_tensor **indices, empo_tensor *x, int dim, int keepdim);
int empo_argmax(empo_tensor **out, empo_tensor *x, int dim, int keepdim);
int empo_max(empo_tensor **out, empo_tensor *x);                          /* all -> scalar */
int empo_softmax(empo_tensor **out, empo_tensor *x, int dim);
int empo_log_softmax(empo_tensor **out, empo_tensor *x, int dim);

/* --- linear algebra --- */
/* a [..., M, K] @ b [..., K, N] with batch broadcasting; 1-d operands as in
 * PyTorch. Transposed views are used without copying. */
int empo_matmul(empo_tensor **out, empo_tensor *a, empo_tensor *b);
/* x [..., in] @ w[out, in]^T + bias[out] (bias may be NULL) */
int empo_linear(empo_tensor **out, empo_tensor *x, empo_tensor *w, empo_tensor *bias);
/* Mixed precision: y = bf16(x) @ w16^T + bias with w16 a contiguous bf16
 * copy of the f32 weight w that the caller keeps current. Both
 * products take bf16 operands and sum in f32 (the GPU's tensor cores); the
 * gradients reach x, w (f32: bf16(g)^T bf16(x)) and bias. Keeps x in bf16
 * for backward: half the bytes of linear's f32 copy. */
int empo_linear_bf16(empo_tensor **out, empo_tensor *x, empo_tensor *w, empo_tensor *w16, empo_tensor *bias);

/* --- indexing --- */
/* weight [V, D], ids (i32/i64) [...] -> [..., D] */
int empo_embedding(empo_tensor **out, empo_tensor *weight, empo_tensor *ids);
/* out[i][j] = x[i][index[i][j]] along dim (index i32/i64, same ndim as x) */
int empo_gather(empo_tensor **out, empo_tensor *x, int dim, empo_tensor *index);
/* picks slices index[k] of dim (index 1-d i32/i64) */
int empo_index_select(empo_tensor **out, empo_tensor *x, int dim, empo_tensor *index);
int empo_cat(empo_tensor **out, int n, empo_tensor *const *xs, int dim);
/* cond (any dtype, nonzero = true) ? a : b, broadcasting all three */
int empo_where(empo_tensor **out, empo_tensor *cond, empo_tensor *a, empo_tensor *b);
int empo_masked_fill(empo_tensor **out, empo_tensor *x, empo_tensor *mask, double value);

/* --- fused transformer kernels --- */
/* x [..., D] * rsqrt(mean(x^2) + eps) * weight [D] */
int empo_rmsnorm(empo_tensor **out, empo_tensor *x, empo_tensor *weight, double eps);
/* Rotary embedding, half-rotation layout (as Hugging Face Qwen2/Llama):
 * x [B, H, T, Dh]; position of token t is positions[b, t] (i64 [B, T] or
 * [T]) when positions is not NULL, else offset + t. */
int empo_rope(empo_tensor **out, empo_tensor *x, empo_tensor *positions, int64_t offset,
              double theta);
/* Scaled dot-product attention with grouped KV heads.
 * q [B, Hq, T, Dh], k/v [B, Hkv, S, Dh], Hq % Hkv == 0, S >= T.
 * causal: query t sees keys s <= t + (S - T) (so a KV cache of S - T past
 * tokens works). key_mask (u8/i32/i64/f32 [B, S], nonzero = keep) may be
 * NULL. scale <= 0 means 1/sqrt(Dh). -> [B, Hq, T, Dh] */
int empo_attention(empo_tensor **out, empo_tensor *q, empo_tensor *k, empo_tensor *v,
                   int causal, double scale, empo_tensor *key_mask);
/* silu(gate) * up */
int empo_swiglu(empo_tensor **out, empo_tensor *gate, empo_tensor *up);
/* logits [N, V], ids [N] -> logp [N] = log_softmax(logits)[ids] and
 * entropy [N] = -sum p log p, in one pass; both differentiable. Either
 * output pointer may be NULL. */
int empo_logprob_entropy(empo_tensor **logp, empo_tensor **entropy, empo_tensor *logits,
                         empo_tensor *ids);
/* The same from final hidden states through the LM head, without the
 * [N, V] logits: logits = scale * h @ weight[:vocab]^T (scale = 1 /
 * temperature; vocab 0 = every row of weight, fewer leaves out a padded
 * vocabulary's rows, which then get no gradient), computed `chunk` rows at
 * a time (0: about 32 MB of logits a chunk) and recomputed per chunk in
 * backward. h [..., D], weight [V, D], ids [...] in [0, vocab) -> logp,
 * entropy [...]; both differentiable in h and weight. */
int empo_head_logprob(empo_tensor **logp, empo_tensor **entropy, empo_tensor *h, empo_tensor *weight,
                      empo_tensor *ids, double scale, int64_t vocab, int64_t chunk);

#endif
