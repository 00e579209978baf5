/* decode_step.cu — the C decoder's step and prefill on the GPU
 * (kernels/decode_step.h): the stock decoder's layers as a sequence of
 * this table's kernels on its one stream (products through cuBLASLt, the
 * fused RMSNorm, rope, SwiGLU and KV attention), with a few small kernels of
 * its own (embedding rows, bias rows, the cache stores, a prefill's
 * positions and causal attention, the last tokens' rows). The arithmetic is
 * the model's ops', so a step gives the Lua model's logits on the same
 * device; the CPU's fused step (kernels/cpu/decode_step.c) is the same
 * computation in one parallel region.
 *
 * Every pointer in the model and the batch is device memory: the op
 * (core/generate/decoder.c) uploads each call's index arrays. A bf16
 * model's activations are rounded to bf16 for each product, as autocast
 * does (the tensor cores take two bf16 operands; the sums stay f32): its
 * logits agree with the CPU's f32-activation decoder to bf16 tolerance. */
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/convert.h"
#include "kernels/decode_step.h"
#include "kernels/elementwise.h"
#include "kernels/fused.h"
#include "kernels/gemm.h"
#include "kernels/kv_attention.h"

EMPO_CUDA_BEGIN
empo_gemm_fn gemm;
empo_gemm_bf16_fn gemm_bf16;
empo_binary_fn binary;
empo_rmsnorm_forward_fn rmsnorm_forward;
empo_swiglu_forward_fn swiglu_forward;
empo_rope_fn rope_forward;
empo_kv_attention_fn kv_attention;
empo_convert_fn convert;

/* ---- the step's own small kernels ---- */

/* x[r] = embed[ids[r]] (f32, or bf16 widened) */
__global__ void embed_rows(float *x, const void *embed, int bf16, const int64_t *ids, int64_t R, int64_t D) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < R * D; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / D, j = e % D, at = ids[r] * D + j;
        x[e] = bf16 ? empo_bf16_value(((const uint16_t *)embed)[at]) : ((const float *)embed)[at];
    }
}

/* y[r, j] += b[j] */
__global__ void add_bias_rows(float *y, const float *b, int64_t R, int64_t n) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < R * n; e += (int64_t)gridDim.x * blockDim.x)
        y[e] += b[e % n];
}

/* cache[row, h, col, :] = src[r, h, :] with (row, col) = (r, col[r]) for a
 * step, or (slot[prompt_of[r]], r - start[prompt_of[r]]) for a prefill */
__global__ void store_kv(float *cache, const float *src, const int64_t *col, const int64_t *prompt_of,
                         const int64_t *start, const int64_t *slot, int64_t R, int64_t H, int64_t S, int64_t Dh) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < R * H * Dh;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / (H * Dh), h = (e / Dh) % H, d = e % Dh;
        int64_t row = r, c;
        if (prompt_of) {
            const int64_t i = prompt_of[r];
            row = slot[i], c = r - start[i];
        } else {
            c = col[r];
        }
        cache[((row * H + h) * S + c) * Dh + d] = src[e];
    }
}

/* pos[r] = the token's place in its prompt */
__global__ void prompt_positions(int64_t *pos, const int64_t *prompt_of, const int64_t *start, int64_t R) {
    for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < R; r += (int64_t)gridDim.x * blockDim.x)
        pos[r] = r - start[prompt_of[r]];
}

/* y[i] = x[start[i + 1] - 1]: each prompt's last token's row */
__global__ void last_rows(float *y, const float *x, const int64_t *start, int64_t n, int64_t D) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n * D; e += (int64_t)gridDim.x * blockDim.x)
        y[e] = x[(start[e / D + 1] - 1) * D + e % D];
}

/* one query row's attention over n positions of keys k and values v: each
 * thread scores positions into score (global scratch), the max and the sum
 * come from fixed-tree block reductions, then each thread owns output
 * dimensions; every thread of the block calls it */
__device__ void attend_row(float *o, float *score, const float *q, const float *k, const float *v, int64_t n,
                           int64_t Dh, float scale) {
    float m = -INFINITY;
    for (int64_t s = threadIdx.x; s < n; s += blockDim.x) {
        float dot = 0.0f;
        for (int64_t d = 0; d < Dh; d++) dot += q[d] * k[s * Dh + d];
        score[s] = scale * dot;
        m = score[s] > m ? score[s] : m;
    }
    m = block_reduce(m, max_op());
    double z = 0.0;
    for (int64_t s = threadIdx.x; s < n; s += blockDim.x) {
        score[s] = expf(score[s] - m);
        z += score[s];
    }
    z = block_reduce(z, sum_op());   /* its barriers also publish score[] */
    for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
        float acc = 0.0f;
        for (int64_t s = 0; s < n; s++) acc += score[s] * v[s * Dh + d];
        o[d] = n > 0 ? (float)(acc / z) : 0.0f;
    }
}

/* a prefill's attention: token r (a block per token and query head) over
 * positions 0 .. pos[r] of its prompt's slot, causally; scores in work */
__global__ void prefill_attention(float *out, float *work, const float *q, const float *pk, const float *pv,
                                  const int64_t *pos, const int64_t *prompt_of, const int64_t *slot,
                                  empo_kv_shape a) {
    const int64_t r = blockIdx.x / a.Hq, h = blockIdx.x % a.Hq, Dh = a.Dh, n = pos[r] + 1;
    const int64_t kvh = h / (a.Hq / a.Hkv), p = slot[prompt_of[r]];
    const float *qr = q + (r * a.Hq + h) * Dh, *kh = pk + (p * a.Hkv + kvh) * a.Sp * Dh,
                *vh = pv + (p * a.Hkv + kvh) * a.Sp * Dh;
    attend_row(out + (r * a.Hq + h) * Dh, work + blockIdx.x * a.Sp, qr, kh, vh, n, Dh, a.scale);
}

/* ---- the scratch: one carve for sizes and pointers ---- */

struct buffers {
    float *x, *h, *q, *k, *v, *att, *g, *u, *rstd, *tmp, *work, *last;
    uint16_t *h16;   /* a bf16 model's activations for a product */
    int64_t *pos;    /* a prefill's positions */
};

/* floats of scratch for `rows` rows, and (base non-NULL) the buffers in it */
static int64_t carve(buffers *b, float *base, const empo_decode_model *m, int64_t rows) {
    const int64_t qd = m->Hq * m->Dh, kd = m->Hkv * m->Dh, wide = m->F > m->D ? m->F : m->D;
    const int64_t rank = m->lora_rank > 0 ? m->lora_rank : 1;
    const int64_t sizes[] = {rows * m->D, rows * m->D, rows * qd, rows * kd, rows * kd, rows * qd, rows * m->F,
                             rows * m->F, rows, rows * rank, rows * m->Hq * (m->Sp + m->S + 1) /* kv_attention_work */,
                             rows * m->D,
                             (rows * wide + 1) / 2, rows * 2};
    float **slots[] = {&b->x, &b->h, &b->q, &b->k, &b->v, &b->att, &b->g, &b->u, &b->rstd, &b->tmp, &b->work,
                       &b->last, (float **)&b->h16, (float **)&b->pos};
    int64_t at = 0;
    for (int i = 0; i < (int)(sizeof sizes / sizeof *sizes); i++) {
        if (base) *slots[i] = base + at;
        at += (sizes[i] + 63) / 64 * 64;   /* 256-byte alignment for every buffer */
    }
    return at;
}

int64_t decode_scratch_floats(const empo_decode_model *m, int64_t rows) {
    buffers b;
    return carve(&b, nullptr, m, rows);
}

/* ---- the layers ---- */

/* y [R, out] = x [R, in] W^T (+ bias) (+ the projection's LoRA update) */
static void project(float *y, const float *x, const void *W, const float *bias, const empo_decode_lora *lora,
                    int64_t R, int64_t in, int64_t out, const empo_decode_model *m, const buffers &s) {
    if (m->bf16) {   /* the activations rounded to the weights' precision */
        convert(s.h16, EMPO_BF16, x, EMPO_F32, R * in);
        gemm_bf16(0, 1, R, out, in, 1.0f, s.h16, in, (const uint16_t *)W, in, 0.0f, y, out);
    } else {
        gemm(0, 1, R, out, in, 1.0f, x, in, (const float *)W, in, 0.0f, y, out);
    }
    if (bias) EMPO_LAUNCH(add_bias_rows, blocks_for(R * out, 256), 256, 0, y, bias, R, out);
    if (lora && lora->rank > 0) {   /* y += scaling (x A^T) B^T */
        gemm(0, 1, R, lora->rank, in, 1.0f, x, in, lora->a, in, 0.0f, s.tmp, lora->rank);
        gemm(0, 1, R, out, lora->rank, m->lora_scaling, s.tmp, lora->rank, lora->b, lora->rank, 1.0f, y, out);
    }
}

/* The layers over R rows in s.x (their embeddings); pos: the rows' rope
 * positions. step: the rows' own caches (batch b); else a prefill's prompts. */
static void layers(const empo_decode_model *m, const buffers &s, int64_t R, const int64_t *pos,
                   const empo_decode_batch *step, const empo_prefill_batch *pre) {
    const int64_t D = m->D, F = m->F, Dh = m->Dh, qd = m->Hq * Dh, kd = m->Hkv * Dh;
    const float scale = (float)(1.0 / sqrt((double)Dh));   /* as the attention op's default */
    for (int64_t l = 0; l < m->L; l++) {
        const empo_decode_layer *y = &m->layer[l];
        rmsnorm_forward(s.h, s.rstd, s.x, y->input_norm, R, D, y->input_eps);
        project(s.q, s.h, y->wq, y->bq, &y->lora[EMPO_LORA_Q], R, D, qd, m, s);
        project(s.k, s.h, y->wk, y->bk, &y->lora[EMPO_LORA_K], R, D, kd, m, s);
        project(s.v, s.h, y->wv, y->bv, &y->lora[EMPO_LORA_V], R, D, kd, m, s);
        rope_forward(s.q, s.q, pos, R, m->Hq, 1, Dh, m->theta);
        rope_forward(s.k, s.k, pos, R, m->Hkv, 1, Dh, m->theta);
        const unsigned kv_blocks = blocks_for(R * kd, 256);
        if (step) {
            EMPO_LAUNCH(store_kv, kv_blocks, 256, 0, y->k, s.k, step->col, nullptr, nullptr, nullptr, R, m->Hkv, m->S, Dh);
            EMPO_LAUNCH(store_kv, kv_blocks, 256, 0, y->v, s.v, step->col, nullptr, nullptr, nullptr, R, m->Hkv, m->S, Dh);
            const empo_kv_shape a = {R, m->Hq, m->Hkv, Dh, m->slots, m->Sp, m->S, scale};
            kv_attention(s.att, s.work, s.q, y->pk, y->pv, step->plen, step->order, step->start, y->k, y->v,
                         step->lens, &a);
        } else {
            EMPO_LAUNCH(store_kv, kv_blocks, 256, 0, y->pk, s.k, nullptr, pre->prompt_of, pre->start, pre->slot, R,
                        m->Hkv, m->Sp, Dh);
            EMPO_LAUNCH(store_kv, kv_blocks, 256, 0, y->pv, s.v, nullptr, pre->prompt_of, pre->start, pre->slot, R,
                        m->Hkv, m->Sp, Dh);
            const empo_kv_shape a = {R, m->Hq, m->Hkv, Dh, m->slots, m->Sp, m->S, scale};
            EMPO_LAUNCH(prefill_attention, (unsigned)(R * m->Hq), 128, 0, s.att, s.work, s.q, y->pk, y->pv, pos,
                        pre->prompt_of, pre->slot, a);
        }
        project(s.h, s.att, y->wo, y->bo, &y->lora[EMPO_LORA_O], R, qd, D, m, s);
        binary(EMPO_BIN_ADD, s.x, s.x, 1, s.h, 1, R * D);
        rmsnorm_forward(s.h, s.rstd, s.x, y->post_norm, R, D, y->post_eps);
        project(s.g, s.h, y->wg, nullptr, &y->lora[EMPO_LORA_GATE], R, D, F, m, s);
        project(s.u, s.h, y->wu, nullptr, &y->lora[EMPO_LORA_UP], R, D, F, m, s);
        swiglu_forward(s.g, s.g, s.u, R * F);
        project(s.h, s.g, y->wd, nullptr, &y->lora[EMPO_LORA_DOWN], R, F, D, m, s);
        binary(EMPO_BIN_ADD, s.x, s.x, 1, s.h, 1, R * D);
    }
}

/* logits [n, V] of the n rows of h (the final norm, then the head) */
static void head(float *logits, const float *rows, int64_t n, const empo_decode_model *m, const buffers &s) {
    rmsnorm_forward(s.h, s.rstd, rows, m->norm, n, m->D, m->norm_eps);
    project(logits, s.h, m->head, nullptr, nullptr, n, m->D, m->V, m, s);
}

void decode_step(float *logits, float *scratch, const empo_decode_model *m, const empo_decode_batch *b) {
    if (b->B <= 0) return;
    buffers s = {};
    carve(&s, scratch, m, b->B);
    EMPO_LAUNCH(embed_rows, blocks_for(b->B * m->D, 256), 256, 0, s.x, m->embed, m->embed_bf16, b->ids, b->B, m->D);
    layers(m, s, b->B, b->pos, b, nullptr);
    head(logits, s.x, b->B, m, s);
}

void decode_prefill(float *logits, float *scratch, const empo_decode_model *m, const empo_prefill_batch *b) {
    if (b->n <= 0) return;
    const int64_t R = b->rows;   /* start[n], which lives on the device */
    buffers s = {};
    carve(&s, scratch, m, R);
    EMPO_LAUNCH(embed_rows, blocks_for(R * m->D, 256), 256, 0, s.x, m->embed, m->embed_bf16, b->ids, R, m->D);
    EMPO_LAUNCH(prompt_positions, blocks_for(R, 256), 256, 0, s.pos, b->prompt_of, b->start, R);
    layers(m, s, R, s.pos, nullptr, b);
    EMPO_LAUNCH(last_rows, blocks_for(b->n * m->D, 256), 256, 0, s.last, s.x, b->start, b->n, m->D);
    head(logits, s.last, b->n, m, s);
}
EMPO_CUDA_END
