/* decode_step.c — the C decoder's passes (kernels/decode_step.h): a decode step
 * (one token for each row of the sampling batch) and a prefill (every
 * token of some prompts). One parallel region; every phase's units are
 * claimed through the team's work shares (team.h: equal shares, the
 * unfinished taken over by idle threads) and the phase ends in a barrier.
 * The residual stream h lives as panels (panel_gemm.h), as the products
 * write it and the norms read it: 16 rows side by side in vector lanes.
 *   embed      panels: h = embed[ids]
 *   per layer  norm    panels: x = rmsnorm(h), panels too
 *              qkv     row blocks x weight strips: q, k, v (+ biases)
 *              rope    rows: rotate q in place, k into the cache with v
 *                      (a step: the row's own column; a prefill: its prompt slot)
 *              attend  attention tasks (a step: prompt once for its rows, then
 *                      own positions; a prefill: causal within each prompt)
 *              pack    panels of the attention output
 *              o       row blocks x strips: h += o_proj (+ bias)
 *              norm    as above, post-attention
 *              mlp     row blocks x gate/up strips, SwiGLU fused: s as panels
 *              down    row blocks x strips: h += down_proj
 *              (a projection with a LoRA adapter: its update after its
 *              product, x A^T then that times B^T; an adapter on gate or
 *              up unfuses the SwiGLU: gate and up as rows, then s)
 *   head       (a prefill: each prompt's last row first) norm, then the LM
 *              head's strips: logits
 * Every number a row gets is independent of the other rows, of the
 * thread count and of which thread computes it (panel_gemm.h,
 * kv_attention.c), so sampling stays reproducible across batch sizes. */
#include <math.h>
#include <immintrin.h>
#include <omp.h>
#include <string.h>
#include "kernels/decode_step.h"
#include "fused_rows.h"
#include "kernels/panel_gemm.h"
#include "kernels/gemm.h"
#include "kernels/kv_attention.h"
#include "kernels/team.h"

/* Rows per block of a product: a block's panels (and its part of the
 * output) stay in cache while every strip of the weights passes, the
 * weights coming from the core's L2. Weights larger than that stream from
 * memory: then one block of every row, each strip read once. */
enum { BLOCK_PANELS = 8, L2_WEIGHTS = 512 << 10 };

static int64_t block_rows(int64_t weight_bytes, int64_t B) {
    return weight_bytes > L2_WEIGHTS ? empo_panels(B) * EMPO_PANEL : BLOCK_PANELS * EMPO_PANEL;
}

typedef struct {
    float *hp, *xp, *sp, *q, *kn, *vn, *att, *kvwork;
    float *lt, *ltp, *gate, *up;   /* LoRA: x A^T (rows, then panels); gate and up rows when they have adapters */
} scratch;

/* the attention's scratch: a slice per thread of the team */
static int64_t kv_work_floats(const empo_decode_model *m, int64_t rows) {
    const empo_kv_shape a = {rows, m->Hq, m->Hkv, m->Dh, m->slots, m->Sp, m->S, 1.0f};
    return empo_k_kv_attention_work_for(&a, m->threads);
}

/* Lays out the scratch of `rows` rows from base (s NULL: only measures it);
 * returns its size in floats. */
static int64_t carve(scratch *s, float *base, const empo_decode_model *m, int64_t rows) {
    const int64_t padded = empo_panels(rows) * EMPO_PANEL, qd = m->Hq * m->Dh, kd = m->Hkv * m->Dh;
    const int64_t mlp = m->lora_mlp ? rows * m->F : 0;
    const int64_t size[] = {padded * m->D, padded * (m->D > qd ? m->D : qd), padded * m->F, rows * qd, rows * kd,
                            rows * kd, rows * qd, kv_work_floats(m, rows), rows * m->lora_rank,
                            padded * m->lora_rank, mlp, mlp};
    scratch unused;
    const int lay = s != NULL;
    if (!lay) s = &unused;
    float **part[] = {&s->hp, &s->xp, &s->sp, &s->q, &s->kn, &s->vn, &s->att, &s->kvwork, &s->lt, &s->ltp, &s->gate,
                      &s->up};
    int64_t n = 0;
    for (int i = 0; i < (int)(sizeof size / sizeof size[0]); i++) {
        if (lay) *part[i] = base + n;
        n += size[i];
    }
    return n;
}

int64_t empo_decode_scratch_floats(const empo_decode_model *m, int64_t rows) { return carve(NULL, NULL, m, rows); }

void empo_decode_rope_table(float *table, const empo_decode_model *m) {
    const int64_t Dh = m->Dh, half = Dh / 2;
    for (int64_t t = 0; t < m->Sp + m->S; t++)
        empo_rope_cos_sin(table + t * Dh, table + t * Dh + half, t, 0, half, Dh, m->theta, 1.0f);
}

/* panels p0..p1-1 of hp: the embeddings of the rows' tokens (embed f32,
 * or bf16 with `bf16`: widened exactly) */
static void embed_panels(float *hp, const void *embed, int bf16, const int64_t *ids, int64_t B, int64_t D, int64_t p0,
                         int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
        float *d = hp + p * D * EMPO_PANEL;
        const int64_t nm = empo_panel_start(d, p, B, D);
        for (int64_t i = 0; i < nm; i++) {
            const int64_t row = ids[p * EMPO_PANEL + i] * D;
            if (bf16) {
                const uint16_t *e = (const uint16_t *)embed + row;
                for (int64_t j = 0; j < D; j++) d[j * EMPO_PANEL + i] = empo_bf16_value(e[j]);
            } else {
                const float *e = (const float *)embed + row;
                for (int64_t j = 0; j < D; j++) d[j * EMPO_PANEL + i] = e[j];
            }
        }
    }
}

/* rmsnorm of eight lanes of a panel (stride 16 between a row's elements):
 * x / sqrt(mean(x^2) + eps) * w, as empo_k_rmsnorm_forward computes a
 * row (up to the order of the sum); lanes not in `live` give 0 */
static void norm_lanes(float *d, const float *x, const float *w, float eps, int64_t D, __m256 live) {
    __m256 ss = _mm256_setzero_ps();
    for (int64_t j = 0; j < D; j++) {
        const __m256 v = _mm256_loadu_ps(x + j * EMPO_PANEL);
        ss = _mm256_fmadd_ps(v, v, ss);
    }
    const __m256 ms = _mm256_add_ps(_mm256_div_ps(ss, _mm256_set1_ps((float)D)), _mm256_set1_ps(eps));
    const __m256 r = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(ms)), live);
    for (int64_t j = 0; j < D; j++) {
        const __m256 xr = _mm256_mul_ps(_mm256_loadu_ps(x + j * EMPO_PANEL), r);
        const __m256 y = _mm256_mul_ps(xr, _mm256_broadcast_ss(w + j));
        _mm256_storeu_ps(d + j * EMPO_PANEL, _mm256_and_ps(y, live));   /* x * 0 is NaN for x = inf */
    }
}

/* panels p0..p1-1 of xp = rmsnorm(hp) * w, lanes beyond B zero */
static void norm_panels(float *xp, const float *hp, const float *w, float eps, int64_t B, int64_t D, int64_t p0,
                        int64_t p1) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t p = p0; p < p1; p++)
        for (int64_t half = 0; half < EMPO_PANEL; half += 8) {
            const int64_t n = B - p * EMPO_PANEL - half;   /* live lanes among these eight */
            const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? n : 8)), lane));
            norm_lanes(xp + p * D * EMPO_PANEL + half, hp + p * D * EMPO_PANEL + half, w, eps, D, live);
        }
}

/* A product phase's units: row blocks x `per_block` strips (or SwiGLU
 * pair groups), enumerated block by block; runs the claimed ones as one
 * call per block through `run(ctx, row0, rows, panel0, u0, u1)`. */
typedef void block_fn(const void *ctx, int64_t row0, int64_t rows, int64_t panel0, int64_t u0, int64_t u1);

static void block_phase(empo_team *w, int64_t B, int64_t rows, int64_t per_block, block_fn *run,
                        const void *ctx) {
    const int64_t blocks = (B + rows - 1) / rows;
    int64_t lo, hi;
    empo_team_begin(w, blocks * per_block);
    while (empo_team_claim(w, &lo, &hi))
        for (int64_t blk = lo / per_block; blk * per_block < hi; blk++) {
            const int64_t u0 = lo > blk * per_block ? lo - blk * per_block : 0;
            const int64_t u1 = hi < (blk + 1) * per_block ? hi - blk * per_block : per_block;
            const int64_t row0 = blk * rows;
            run(ctx, row0, B - row0 < rows ? B - row0 : rows, row0 / EMPO_PANEL, u0, u1);
        }
#pragma omp barrier
}

/* one product segment of a phase: y = xp W^T (+ bias), or +=; rows of
 * stride ldy, or (panels) panels of stride ldy */
typedef struct {
    float *y;
    int64_t ldy, N;
    const void *w;   /* f32, or bf16 (the job's flag) */
    const float *bias;
    int accumulate, panels;
} segment;

typedef struct {
    const segment *seg;
    int nseg;
    const float *xp;
    int64_t K;
    int bf16;
} linear_job;

static int64_t strips_of(int64_t N) { return (N + EMPO_PANEL_STRIP - 1) / EMPO_PANEL_STRIP; }

/* strips s0 .. s1-1 of the segments (taken as one run) for one row block */
static void linear_block(const void *ctx, int64_t row0, int64_t rows, int64_t panel0, int64_t s0, int64_t s1) {
    const linear_job *j = ctx;
    int64_t base = 0;
    for (int i = 0; i < j->nseg; i++) {
        const segment *g = &j->seg[i];
        const int64_t ns = strips_of(g->N), a = s0 > base ? s0 - base : 0, b = s1 - base < ns ? s1 - base : ns;
        if (a < b) {
            const int64_t n1 = b * EMPO_PANEL_STRIP < g->N ? b * EMPO_PANEL_STRIP : g->N;
            const float *xp = j->xp + panel0 * j->K * EMPO_PANEL;
            float *y = g->panels ? g->y + panel0 * g->ldy : g->y + row0 * g->ldy;
            empo_panel_linear_fn *f32 = g->panels ? empo_k_panel_linear_panels : empo_k_panel_linear;
            empo_panel_linear_bf16_fn *bf16 = g->panels ? empo_k_panel_linear_panels_bf16 : empo_k_panel_linear_bf16;
            if (j->bf16) bf16(y, g->ldy, g->accumulate, xp, rows, j->K, g->w, g->bias, a * EMPO_PANEL_STRIP, n1);
            else f32(y, g->ldy, g->accumulate, xp, rows, j->K, g->w, g->bias, a * EMPO_PANEL_STRIP, n1);
        }
        base += ns;
    }
}

static void linear_phase(empo_team *w, const segment *seg, int nseg, const float *xp, int64_t B, int64_t K,
                         int bf16) {
    int64_t total = 0, weights = 0;
    for (int i = 0; i < nseg; i++) total += strips_of(seg[i].N), weights += seg[i].N * K * (bf16 ? 2 : 4);
    const linear_job j = {seg, nseg, xp, K, bf16};
    block_phase(w, B, block_rows(weights, B), total, linear_block, &j);
}

/* dst as panels of B rows of K (lanes beyond B zero) from rows a: scale *
 * a, or with rows b, silu(a) * b (SwiGLU); one phase of the team */
static void panels_of_rows(empo_team *w, float *dst, const float *a, const float *b, float scale, int64_t B,
                           int64_t K) {
    int64_t lo, hi;
    empo_team_begin(w, empo_panels(B));
    while (empo_team_claim(w, &lo, &hi))
        for (int64_t p = lo; p < hi; p++) {
            float *d = dst + p * K * EMPO_PANEL;
            const int64_t nm = empo_panel_start(d, p, B, K);
            for (int64_t i = 0; i < nm; i++) {
                const float *x = a + (p * EMPO_PANEL + i) * K, *u = b ? b + (p * EMPO_PANEL + i) * K : NULL;
                for (int64_t k = 0; k < K; k++)
                    d[k * EMPO_PANEL + i] = u ? x[k] / (1.0f + expf(-x[k])) * u[k] : scale * x[k];
            }
        }
#pragma omp barrier
}

/* The LoRA update of one projection (l->rank > 0) onto what its base
 * product (segment `base`) wrote: t = x A^T as rows, then scaling * t as
 * panels, then y += that B^T, in the base segment's layout. */
static void lora_phase(empo_team *w, const empo_decode_lora *l, float scaling, const float *xp, int64_t B, int64_t K,
                       const segment *base, const scratch *s) {
    const int64_t r = l->rank;
    const segment ta = {s->lt, r, r, l->a, NULL, 0, 0};
    linear_phase(w, &ta, 1, xp, B, K, 0);
    panels_of_rows(w, s->ltp, s->lt, NULL, scaling, B, r);
    const segment yb = {base->y, base->ldy, base->N, l->b, NULL, 1, base->panels};
    linear_phase(w, &yb, 1, s->ltp, B, r, 0);
}

/* each projection of segs (base products already run) that has an adapter */
static void lora_phases(empo_team *w, const empo_decode_model *m, const empo_decode_layer *ly, const int *slot,
                        const segment *segs, int n, const float *xp, int64_t B, int64_t K, const scratch *s) {
    for (int i = 0; i < n; i++)
        if (ly->lora[slot[i]].rank > 0) lora_phase(w, &ly->lora[slot[i]], m->lora_scaling, xp, B, K, &segs[i], s);
}

typedef struct {
    float *sp;
    const float *xp;
    const void *wg, *wu;
    int64_t F, D;
    int bf16;
} swiglu_job;

static void swiglu_block(const void *ctx, int64_t row0, int64_t rows, int64_t panel0, int64_t u0, int64_t u1) {
    const swiglu_job *j = ctx;
    (void)row0;
    const int64_t f1 = u1 * EMPO_PANEL_PAIRS < j->F ? u1 * EMPO_PANEL_PAIRS : j->F;
    float *sp = j->sp + panel0 * j->F * EMPO_PANEL;
    const float *xp = j->xp + panel0 * j->D * EMPO_PANEL;
    if (j->bf16) empo_k_panel_swiglu_bf16(sp, j->F, xp, rows, j->D, j->wg, j->wu, u0 * EMPO_PANEL_PAIRS, f1);
    else empo_k_panel_swiglu(sp, j->F, xp, rows, j->D, j->wg, j->wu, u0 * EMPO_PANEL_PAIRS, f1);
}

static void norm_phase(empo_team *w, float *xp, const float *hp, const float *weight, float eps, int64_t B,
                       int64_t D) {
    int64_t lo, hi;
    empo_team_begin(w, empo_panels(B));
    while (empo_team_claim(w, &lo, &hi)) norm_panels(xp, hp, weight, eps, B, D, lo, hi);
#pragma omp barrier
}

/* The MLP's gate and up when an adapter changes either: each as rows
 * (product, then its LoRA update), then sp = silu(gate) * up as panels
 * (the fused SwiGLU product cannot take an update between the two). */
static void unfused_swiglu(empo_team *w, const empo_decode_model *m, const empo_decode_layer *ly, int64_t B,
                           const scratch *s) {
    const int64_t F = m->F;
    const segment gu[2] = {{s->gate, F, F, ly->wg, NULL, 0, 0}, {s->up, F, F, ly->wu, NULL, 0, 0}};
    linear_phase(w, gu, 2, s->xp, B, m->D, m->bf16);
    lora_phases(w, m, ly, (const int[]){EMPO_LORA_GATE, EMPO_LORA_UP}, gu, 2, s->xp, B, m->D, s);
    panels_of_rows(w, s->sp, s->gate, s->up, 1.0f, B, F);
}

/* What a pass's rows are: a decode step's batch, or a prefill's prompts. */
typedef struct {
    int64_t R;                           /* rows */
    const empo_decode_batch *step;       /* one of the two */
    const empo_prefill_batch *prefill;
} pass;

/* rope of row r's queries (in place) and keys (into the cache, with its
 * value): a step's row at its own column, a prefill's token at its
 * position in its prompt's slot */
static void rope_row(const empo_decode_model *m, const empo_decode_layer *ly, const pass *ps, const scratch *s,
                     int64_t r) {
    const int64_t Dh = m->Dh, half = Dh / 2, qd = m->Hq * Dh, kd = m->Hkv * Dh;
    int64_t t, at0, stride;   /* position; where head 0's key goes, and the next head's */
    float *kc, *vc;
    if (ps->step) {
        t = ps->step->pos[r];
        at0 = (r * m->Hkv * m->S + ps->step->col[r]) * Dh, stride = m->S * Dh;
        kc = ly->k, vc = ly->v;
    } else {
        const int64_t i = ps->prefill->prompt_of[r];
        t = r - ps->prefill->start[i];
        at0 = (ps->prefill->slot[i] * m->Hkv * m->Sp + t) * Dh, stride = m->Sp * Dh;
        kc = ly->pk, vc = ly->pv;
    }
    const float *cs = m->rope + t * Dh, *sn = cs + half;
    for (int64_t h = 0; h < m->Hq; h++) {
        float *x = s->q + r * qd + h * Dh;
        empo_rope_rotate(x, x + half, x, x + half, cs, sn, half);
    }
    for (int64_t h = 0; h < m->Hkv; h++) {
        const int64_t at = at0 + h * stride;
        const float *x = s->kn + r * kd + h * Dh;
        empo_rope_rotate(kc + at, kc + at + half, x, x + half, cs, sn, half);
        memcpy(vc + at, s->vn + r * kd + h * Dh, sizeof(float) * (size_t)Dh);
    }
}

static void attend_phase(empo_team *w, const empo_decode_model *m, const empo_decode_layer *ly,
                         const pass *ps, const scratch *s, int last_only) {
    const empo_kv_shape a = {ps->R, m->Hq, m->Hkv, m->Dh, m->slots, m->Sp, m->S, (float)(1.0 / sqrt((double)m->Dh))};
    int64_t lo, hi;
    if (ps->step) {
        const empo_decode_batch *b = ps->step;
        empo_team_begin(w, empo_k_kv_attention_tasks(b->start, &a));
        while (empo_team_claim(w, &lo, &hi))
            empo_k_kv_attention_range(lo, hi, s->att, s->kvwork, s->q, ly->pk, ly->pv, b->plen, b->order, b->start,
                                      ly->k, ly->v, b->lens, &a);
    } else {   /* task_start: every token's queries, or (last_only) each prompt's last token's */
        const empo_prefill_batch *b = ps->prefill;
        const empo_kv_prompts p = {b->n, b->start, b->slot, last_only};
        const int64_t *task_start = last_only ? b->task_start + b->n + 1 : b->task_start;
        empo_team_begin(w, task_start[b->n]);
        while (empo_team_claim(w, &lo, &hi))
            empo_k_kv_prefill_range(lo, hi, s->att, s->kvwork, s->q, ly->pk, ly->pv, &p, task_start, &a);
    }
#pragma omp barrier
}

/* A prefill's last layer needs only each prompt's last token past its
 * keys and values: that token's h lane and q row move to row i (sources
 * lie at or after their destinations, so one thread in order is safe). */
static void keep_last_rows(const empo_decode_model *m, const empo_prefill_batch *b, const scratch *s) {
    const int64_t D = m->D, qd = m->Hq * m->Dh;
#pragma omp single
    for (int64_t i = 0; i < b->n; i++) {
        const int64_t r = b->start[i + 1] - 1;
        float *to = s->hp + i / EMPO_PANEL * D * EMPO_PANEL + i % EMPO_PANEL;
        const float *from = s->hp + r / EMPO_PANEL * D * EMPO_PANEL + r % EMPO_PANEL;
        for (int64_t j = 0; j < D; j++) to[j * EMPO_PANEL] = from[j * EMPO_PANEL];
        memmove(s->q + i * qd, s->q + r * qd, sizeof(float) * (size_t)qd);
    }
}

/* One layer; `last`: the model's last layer (a prefill keeps only each
 * prompt's last row once the keys and values are in the cache). */
static void layer_pass(empo_team *w, const empo_decode_model *m, const empo_decode_layer *ly, const pass *ps,
                       const scratch *s, int last) {
    const int64_t D = m->D, Dh = m->Dh, qd = m->Hq * Dh, kd = m->Hkv * Dh;
    int64_t B = ps->R, lo, hi;

    norm_phase(w, s->xp, s->hp, ly->input_norm, ly->input_eps, B, D);
    const segment qkv[3] = {{s->q, qd, qd, ly->wq, ly->bq, 0, 0}, {s->kn, kd, kd, ly->wk, ly->bk, 0, 0},
                            {s->vn, kd, kd, ly->wv, ly->bv, 0, 0}};
    linear_phase(w, qkv, 3, s->xp, B, D, m->bf16);
    lora_phases(w, m, ly, (const int[]){EMPO_LORA_Q, EMPO_LORA_K, EMPO_LORA_V}, qkv, 3, s->xp, B, D, s);
    empo_team_begin(w, B);
    while (empo_team_claim(w, &lo, &hi))
        for (int64_t r = lo; r < hi; r++) rope_row(m, ly, ps, s, r);
#pragma omp barrier
    const int last_only = last && ps->prefill;
    if (last_only) {
        keep_last_rows(m, ps->prefill, s);
        B = ps->prefill->n;
    }
    attend_phase(w, m, ly, ps, s, last_only);
    empo_team_begin(w, empo_panels(B));
    while (empo_team_claim(w, &lo, &hi)) empo_k_panel_pack(s->xp, s->att, B, qd, qd, lo, hi);
#pragma omp barrier
    const segment o = {s->hp, D * EMPO_PANEL, D, ly->wo, ly->bo, 1, 1};
    linear_phase(w, &o, 1, s->xp, B, qd, m->bf16);
    lora_phases(w, m, ly, (const int[]){EMPO_LORA_O}, &o, 1, s->xp, B, qd, s);
    norm_phase(w, s->xp, s->hp, ly->post_norm, ly->post_eps, B, D);
    if (ly->lora[EMPO_LORA_GATE].rank > 0 || ly->lora[EMPO_LORA_UP].rank > 0) {
        unfused_swiglu(w, m, ly, B, s);
    } else {
        const swiglu_job glu = {s->sp, s->xp, ly->wg, ly->wu, m->F, D, m->bf16};
        const int64_t glu_rows = block_rows(2 * m->F * D * (m->bf16 ? 2 : 4), B);
        block_phase(w, B, glu_rows, (m->F + EMPO_PANEL_PAIRS - 1) / EMPO_PANEL_PAIRS, swiglu_block, &glu);
    }
    const segment down = {s->hp, D * EMPO_PANEL, D, ly->wd, NULL, 1, 1};
    linear_phase(w, &down, 1, s->sp, B, m->F, m->bf16);
    lora_phases(w, m, ly, (const int[]){EMPO_LORA_DOWN}, &down, 1, s->sp, B, m->F, s);
}

/* embed, the layers (which leave the rows to score at 0 .. out_rows-1 of
 * h), the final norm and the LM head */
static void run_pass(float *logits, const scratch *s, const empo_decode_model *m, const pass *ps, uint64_t *claims,
                     const int64_t *ids, int64_t out_rows) {
    const int64_t D = m->D;
#pragma omp parallel num_threads(m->threads)
    {
        empo_team w = empo_team_join(claims, omp_get_thread_num(), omp_get_num_threads());
        int64_t lo, hi;
        empo_team_begin(&w, empo_panels(ps->R));
        while (empo_team_claim(&w, &lo, &hi)) embed_panels(s->hp, m->embed, m->embed_bf16, ids, ps->R, D, lo, hi);
#pragma omp barrier
        for (int64_t l = 0; l < m->L; l++) layer_pass(&w, m, &m->layer[l], ps, s, l == m->L - 1);
        norm_phase(&w, s->xp, s->hp, m->norm, m->norm_eps, out_rows, D);
        const segment head = {logits, m->V, m->V, m->head, NULL, 0, 0};
        linear_phase(&w, &head, 1, s->xp, out_rows, D, m->bf16);
        empo_team_leave(&w);
    }
}

void empo_k_decode_step(float *logits, float *scratch_floats, const empo_decode_model *m, const empo_decode_batch *b) {
    if (b->B == 0) return;
    scratch s;
    carve(&s, scratch_floats, m, b->B);
    for (int64_t r = 0; r < b->B; r++) b->lens[r] = b->col[r] + 1;
    const pass ps = {b->B, b, NULL};
    run_pass(logits, &s, m, &ps, b->claims, b->ids, b->B);
}

void empo_k_decode_prefill(float *logits, float *scratch_floats, const empo_decode_model *m,
                           const empo_prefill_batch *b) {
    const int64_t R = b->start[b->n];
    if (b->n == 0) return;
    scratch s;
    carve(&s, scratch_floats, m, R);
    for (int64_t i = 0; i < b->n; i++)
        for (int64_t r = b->start[i]; r < b->start[i + 1]; r++) b->prompt_of[r] = i;
    const empo_kv_shape a = {R, m->Hq, m->Hkv, m->Dh, m->slots, m->Sp, m->S, 0.0f};
    const empo_kv_prompts all = {b->n, b->start, b->slot, 0}, last = {b->n, b->start, b->slot, 1};
    empo_k_kv_prefill_tasks(b->task_start, &all, &a);
    empo_k_kv_prefill_tasks(b->task_start + b->n + 1, &last, &a);
    const pass ps = {R, NULL, b};
    run_pass(logits, &s, m, &ps, b->claims, b->ids, b->n);
}
