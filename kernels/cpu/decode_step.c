/* decode_step.c — the C decode step (kernels/decode.h). One parallel
 * region; every phase's units are claimed through the team's work shares
 * (team.h: equal shares, the unfinished taken over by idle threads) and
 * the phase ends in a barrier:
 *   embed      rows: h = embed[ids]
 *   per layer  norm    panels: x = rmsnorm(h) written as panels (panel_gemm.h)
 *              qkv     weight strips: q, k, v (+ biases)
 *              rope    rows: rotate q in place, k into the own cache with v
 *              attend  kv_attention tasks (prompt once for its rows, then own positions)
 *              pack    panels of the attention output
 *              o       weight strips: h += o_proj (+ bias)
 *              norm    as above, post-attention
 *              mlp     gate/up strips, SwiGLU fused: s as panels
 *              down    weight strips: h += down_proj
 *   head       norm, then the LM head's strips: logits
 * Every number a row gets is independent of the other rows, of the
 * thread count and of which thread computes it (panel_gemm.h,
 * kv_attention.c), so sampling stays reproducible across batch sizes. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "decode.h"
#include "fused_rows.h"
#include "panel_gemm.h"
#include "sample.h"
#include "team.h"

typedef struct {
    float *rope;   /* [Sp + S, Dh]: cos | sin of every position, filled once (empo_decode_rope_table) */
    float *h, *xp, *sp, *q, *kn, *vn, *att, *kvwork;
} scratch;

/* the decode attention's scratch: a slice per thread of the step's team */
static int64_t kv_work_floats(const empo_decode_model *m, int64_t rows) {
    const empo_kv_shape a = {rows, m->Hq, m->Hkv, m->Dh, m->slots, m->Sp, m->S, 1.0f};
    return empo_k_kv_attention_work_for(&a, m->threads);
}

/* Lays out the scratch of `rows` rows from base (s NULL: only measures it);
 * returns its size in floats. The rope table comes first: its place does
 * not depend on the rows. */
static int64_t carve(scratch *s, float *base, const empo_decode_model *m, int64_t rows) {
    const int64_t padded = empo_panels(rows) * EMPO_PANEL, qd = m->Hq * m->Dh, kd = m->Hkv * m->Dh;
    const int64_t size[] = {(m->Sp + m->S) * m->Dh, rows * m->D, padded * (m->D > qd ? m->D : qd), padded * m->F,
                            rows * qd, rows * kd, rows * kd, rows * qd, kv_work_floats(m, rows)};
    scratch unused;
    const int lay = s != NULL;
    if (!lay) s = &unused;
    float **part[] = {&s->rope, &s->h, &s->xp, &s->sp, &s->q, &s->kn, &s->vn, &s->att, &s->kvwork};
    int64_t n = 0;
    for (int i = 0; i < (int)(sizeof size / sizeof size[0]); i++) {
        if (lay) *part[i] = base + n;
        n += size[i];
    }
    return n;
}

int64_t empo_decode_scratch_floats(const empo_decode_model *m, int64_t rows) { return carve(NULL, NULL, m, rows); }

void empo_decode_rope_table(float *scratch_floats, const empo_decode_model *m) {
    const int64_t Dh = m->Dh, half = Dh / 2;
    for (int64_t t = 0; t < m->Sp + m->S; t++)
        empo_rope_cos_sin(scratch_floats + t * Dh, scratch_floats + t * Dh + half, t, 0, half, Dh, m->theta, 1.0f);
}

/* panels p0..p1-1 of xp = rmsnorm(h rows) * w (as empo_k_rmsnorm_forward
 * computes a row), lanes beyond B zero */
static void norm_panels(float *xp, const float *h, const float *w, float eps, int64_t B, int64_t D, int64_t p0,
                        int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
        float *d = xp + p * D * EMPO_PANEL;
        const int64_t nm = empo_panel_start(d, p, B, D);
        for (int64_t i = 0; i < nm; i++) {
            const float *x = h + (p * EMPO_PANEL + i) * D;
            const float r = empo_k_rms_rstd(x, D, eps);
            for (int64_t j = 0; j < D; j++) d[j * EMPO_PANEL + i] = (x[j] * r) * w[j];
        }
    }
}

/* one product segment of a phase: y (ldy) = xp W^T (+ bias), or += */
typedef struct {
    float *y;
    int64_t ldy, N;
    const float *w, *bias;
    int accumulate;
} segment;

/* The strips of the segments, claimed as one run of strips. */
static void linear_phase(const empo_team *w, const segment *seg, int nseg, const float *xp, int64_t B, int64_t K) {
    int64_t total = 0, lo, hi;
    for (int i = 0; i < nseg; i++) total += (seg[i].N + EMPO_PANEL_STRIP - 1) / EMPO_PANEL_STRIP;
    empo_team_begin(w, total);
    while (empo_team_claim(w, &lo, &hi)) {
        int64_t base = 0;
        for (int i = 0; i < nseg; i++) {
            const int64_t ns = (seg[i].N + EMPO_PANEL_STRIP - 1) / EMPO_PANEL_STRIP;
            const int64_t s0 = lo > base ? lo - base : 0, s1 = hi - base < ns ? hi - base : ns;
            if (s0 < s1) {
                const int64_t n0 = s0 * EMPO_PANEL_STRIP;
                const int64_t n1 = s1 * EMPO_PANEL_STRIP < seg[i].N ? s1 * EMPO_PANEL_STRIP : seg[i].N;
                empo_k_panel_linear(seg[i].y, seg[i].ldy, seg[i].accumulate, xp, B, K, seg[i].w, seg[i].bias, n0,
                                    n1);
            }
            base += ns;
        }
    }
#pragma omp barrier
}

static void norm_phase(const empo_team *w, float *xp, const float *h, const float *weight, float eps, int64_t B,
                       int64_t D) {
    int64_t lo, hi;
    empo_team_begin(w, empo_panels(B));
    while (empo_team_claim(w, &lo, &hi)) norm_panels(xp, h, weight, eps, B, D, lo, hi);
#pragma omp barrier
}

/* rope of row r's queries (in place) and keys (into its own cache column,
 * with its value) */
static void rope_row(const empo_decode_model *m, const empo_decode_layer *ly, const empo_decode_batch *b,
                     const scratch *s, int64_t r) {
    const int64_t Dh = m->Dh, half = Dh / 2, qd = m->Hq * Dh, kd = m->Hkv * Dh;
    const float *cs = s->rope + b->pos[r] * Dh, *sn = cs + half;
    for (int64_t h = 0; h < m->Hq; h++) {
        float *x = s->q + r * qd + h * Dh;
        empo_rope_rotate(x, x + half, x, x + half, cs, sn, half);
    }
    for (int64_t h = 0; h < m->Hkv; h++) {
        const int64_t at = ((r * m->Hkv + h) * m->S + b->col[r]) * Dh;
        const float *x = s->kn + r * kd + h * Dh;
        empo_rope_rotate(ly->k + at, ly->k + at + half, x, x + half, cs, sn, half);
        memcpy(ly->v + at, s->vn + r * kd + h * Dh, sizeof(float) * (size_t)Dh);
    }
}

static void layer_step(const empo_team *w, const empo_decode_model *m, const empo_decode_layer *ly,
                       const empo_decode_batch *b, const scratch *s) {
    const int64_t B = b->B, D = m->D, Dh = m->Dh, qd = m->Hq * Dh, kd = m->Hkv * Dh;
    int64_t lo, hi;

    norm_phase(w, s->xp, s->h, ly->input_norm, ly->input_eps, B, D);
    const segment qkv[3] = {{s->q, qd, qd, ly->wq, ly->bq, 0}, {s->kn, kd, kd, ly->wk, ly->bk, 0},
                            {s->vn, kd, kd, ly->wv, ly->bv, 0}};
    linear_phase(w, qkv, 3, s->xp, B, D);
    empo_team_begin(w, B);
    while (empo_team_claim(w, &lo, &hi))
        for (int64_t r = lo; r < hi; r++) rope_row(m, ly, b, s, r);
#pragma omp barrier
    const empo_kv_shape a = {B, m->Hq, m->Hkv, Dh, m->slots, m->Sp, m->S, (float)(1.0 / sqrt((double)Dh))};
    const int64_t tasks = empo_k_kv_attention_tasks(b->start, &a);
    empo_team_begin(w, tasks);
    while (empo_team_claim(w, &lo, &hi))
        empo_k_kv_attention_range(lo, hi, s->att, s->kvwork, s->q, ly->pk, ly->pv, b->plen, b->order, b->start,
                                  ly->k, ly->v, b->lens, &a);
#pragma omp barrier
    empo_team_begin(w, empo_panels(B));
    while (empo_team_claim(w, &lo, &hi)) empo_k_panel_pack(s->xp, s->att, B, qd, qd, lo, hi);
#pragma omp barrier
    const segment o = {s->h, D, D, ly->wo, ly->bo, 1};
    linear_phase(w, &o, 1, s->xp, B, qd);
    norm_phase(w, s->xp, s->h, ly->post_norm, ly->post_eps, B, D);
    empo_team_begin(w, (m->F + EMPO_PANEL_PAIRS - 1) / EMPO_PANEL_PAIRS);
    while (empo_team_claim(w, &lo, &hi)) {
        const int64_t f1 = hi * EMPO_PANEL_PAIRS < m->F ? hi * EMPO_PANEL_PAIRS : m->F;
        empo_k_panel_swiglu(s->sp, m->F, s->xp, B, D, ly->wg, ly->wu, lo * EMPO_PANEL_PAIRS, f1);
    }
#pragma omp barrier
    const segment down = {s->h, D, D, ly->wd, NULL, 1};
    linear_phase(w, &down, 1, s->sp, B, m->F);
}

void empo_k_decode_step(float *logits, float *scratch_floats, const empo_decode_model *m, const empo_decode_batch *b) {
    const int64_t B = b->B, D = m->D;
    if (B == 0) return;
    scratch s;
    carve(&s, scratch_floats, m, B);
    int64_t *lens = b->lens;
    for (int64_t r = 0; r < B; r++) lens[r] = b->col[r] + 1;
#pragma omp parallel num_threads(m->threads)
    {
        const empo_team w = {b->claims, omp_get_thread_num(), omp_get_num_threads()};
        int64_t lo, hi;
        empo_team_begin(&w, B);
        while (empo_team_claim(&w, &lo, &hi))
            for (int64_t r = lo; r < hi; r++) memcpy(s.h + r * D, m->embed + b->ids[r] * D, sizeof(float) * (size_t)D);
#pragma omp barrier
        for (int64_t l = 0; l < m->L; l++) layer_step(&w, m, &m->layer[l], b, &s);
        norm_phase(&w, s.xp, s.h, m->norm, m->norm_eps, B, D);
        const segment head = {logits, m->V, m->V, m->head, NULL, 0};
        linear_phase(&w, &head, 1, s.xp, B, D);
    }
}
