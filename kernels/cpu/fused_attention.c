/* fused_attention.c — fast CPU kernels for scaled dot-product attention with
 * grouped KV heads (f32), forward and backward, on tiles (FlashAttention's
 * plan): a tile of BQ query rows meets a block of BK keys at a time, and
 * every product is a small register-blocked matrix product
 * (kernels/tile_gemm.h) on data that stays in L1/L2.
 *
 * Forward: one task per tile of BQ query rows of the heads that share a KV
 * head (a decode step's heads fill a tile together). Per key block:
 * S^T = K Q^T (Q^T packed once per tile, the keys read as they are),
 * the online softmax across the tile's queries in vector lanes (running
 * max m and sum l), then O += P V. The row's log-sum-exp is kept for
 * backward. A tile of fewer than 8 queries (a decode step with few heads
 * per KV head) would waste most lanes: it goes query by query with the
 * decode kernel's row primitives (attn_rows.c).
 * Backward: delta = rowsum(dout * out); then per key block and query tile
 * P = exp(scale S - lse), dS = scale P (dout V^T - delta), and
 *   dV += P^T dout,  dK += dS^T Q,  dQ += dS K.
 * Fused (the usual case): one task per (b, KV head) owns the dk/dv rows of
 * its keys and the dq rows of the query heads that share it, so nothing is
 * written twice and no atomics are needed. When there are too few (b, KV
 * head) pairs to keep the threads busy, it splits: dk/dv per (b, KV head,
 * key block), then dq per (b, head, query tile). Both run the same tile
 * steps with the same reduction order (tile_gemm sums each row alike
 * whatever rows it is grouped with), so the results are bit-identical and
 * do not depend on the thread count.
 *
 * Keys hidden by the mask get score -inf and probability 0, and are
 * zeroed in the block copies the products read: whatever an unused KV-cache slot holds
 * (even NaN) cannot leak into the result. Scratch comes from the caller
 * (empo_k_attention_work floats). The naive version is in
 * kernels/ref/fused_attention.c. */
/* Lets GCC if-convert (and so vectorize) the selects in empo_k_expf. */
#pragma GCC optimize("no-trapping-math")
#include <omp.h>
#include "kernels/parallel.h"
#include "attn_tile.h"
#include "kernels/tile_gemm.h"

enum {
    BQ = 32,   /* query rows of a tile */
    BK = 64    /* keys of a block */
};
_Static_assert((int)BQ <= (int)EMPO_FOLD_MAX_W, "a forward tile's queries fold in one pass");

/* One thread's scratch, carved from the caller's work buffer. */
typedef struct {
    float *s, *ds;     // [BQ, BK] scores then probabilities (forward: [BK, BQ]); dp then dS
    float *kt, *vt;    // [Dh, BK] the key block's K and V transposed, hidden keys 0 (forward: Q^T)
    float *kc, *vc;    // [BK, Dh] K and V rows with hidden keys 0 (used when some are hidden)
    float *dkb, *dvb;  // [BK, Dh] the block's dK and dV being summed
    float *o;          // [BQ, Dh] output rows being summed
    float *m, *l;      // [BQ] running max and sum of the online softmax
    float *last;       // [BQ] the last key each query of a forward tile sees
    float *bias;       // [BK] 0 for a key of the block, -inf for a hidden one or padding
} scratch;

static int64_t scratch_floats(int64_t Dh) { return 2 * BQ * BK + 2 * Dh * BK + 4 * BK * Dh + BQ * Dh + 3 * BQ + BK; }

int64_t empo_k_attention_work(const empo_attn_shape *a) {
    return (int64_t)omp_get_max_threads() * scratch_floats(a->Dh) + a->B * a->Hq * a->T;
}

static scratch scratch_for(float *work, int64_t Dh, int thread) {
    float *p = work + thread * scratch_floats(Dh);
    scratch w;
    w.s = p, p += BQ * BK;
    w.ds = p, p += BQ * BK;
    w.kt = p, p += Dh * BK;
    w.vt = p, p += Dh * BK;
    w.kc = p, p += BK * Dh;
    w.vc = p, p += BK * Dh;
    w.dkb = p, p += BK * Dh;
    w.dvb = p, p += BK * Dh;
    w.o = p, p += BQ * Dh;
    w.m = p, p += BQ;
    w.l = p, p += BQ;
    w.last = p, p += BQ;
    w.bias = p;
    return w;
}

/* Query t may see keys [0, end) before the key mask: with S - T cached
 * tokens in front, causal query t is token S - T + t. */
static inline int64_t key_end(const empo_attn_shape *a, int64_t t) {
    if (!a->causal) return a->S;
    int64_t e = t + (a->S - a->T) + 1;
    return e < a->S ? e : a->S;
}

/* Keys s0..s0+n-1 of one KV head as the products read them: k, v point at
 * rows with hidden keys zeroed (the originals when none is hidden); bias
 * (w->bias) is added to the scaled scores, -inf where hidden. */
typedef struct {
    const float *k, *v;   // [n, Dh]
    const float *keep;    // [n] or NULL
    const float *bias;    // [np]
    int64_t s0, n, np;    // first key, keys, keys padded to a multiple of 8
} key_block;

static int any_hidden(const float *keep, int64_t n) {
    for (int64_t j = 0; keep && j < n; j++)
        if (keep[j] == 0.0f) return 1;
    return 0;
}

static const float *clean_rows(float *dst, const float *src, const float *keep, int64_t n, int64_t Dh) {
    for (int64_t j = 0; j < n; j++) {
        if (keep[j] == 0.0f) memset(dst + j * Dh, 0, sizeof(float) * (size_t)Dh);
        else memcpy(dst + j * Dh, src + j * Dh, sizeof(float) * (size_t)Dh);
    }
    return dst;
}

/* dst [Dh, ld] = src [n, Dh] transposed, columns n..np-1 zero, and so are
 * the keys with keep[j] == 0 (keep may be NULL): hidden keys are never
 * multiplied, whatever they hold. */
static void pack_keys_t(float *dst, int64_t ld, const float *src, const float *keep, int64_t n,
                        int64_t np, int64_t Dh) {
    for (int64_t d = 0; d < Dh; d++) memset(dst + d * ld + n, 0, sizeof(float) * (size_t)(np - n));
    for (int64_t j = 0; j < n; j++) {
        const int hide = keep && keep[j] == 0.0f;
        for (int64_t d = 0; d < Dh; d++) dst[d * ld + j] = hide ? 0.0f : src[j * Dh + d];
    }
}

/* Loads keys s0..s0+n-1 of the KV head at kh, vh: the bias row, clean row
 * copies where some key is hidden, and with pack (backward) K^T and V^T. */
static key_block load_block(scratch *w, const float *kh, const float *vh, const float *keep, int64_t s0,
                            int64_t n, int64_t Dh, int pack) {
    key_block kb = {kh + s0 * Dh, vh + s0 * Dh, keep ? keep + s0 : NULL, w->bias, s0, n, (n + 7) & ~(int64_t)7};
    for (int64_t j = 0; j < kb.np; j++) w->bias[j] = j < n && (!kb.keep || kb.keep[j] != 0.0f) ? 0.0f : -INFINITY;
    if (pack) {
        pack_keys_t(w->kt, BK, kb.k, kb.keep, n, kb.np, Dh);
        pack_keys_t(w->vt, BK, kb.v, kb.keep, n, kb.np, Dh);
    }
    if (any_hidden(kb.keep, n)) {
        kb.k = clean_rows(w->kc, kb.k, kb.keep, n, Dh);
        kb.v = clean_rows(w->vc, kb.v, kb.keep, n, Dh);
    }
    return kb;
}

/* Columns of key block kb that query t sees: [0, visible) minus keep == 0. */
static inline int64_t visible(const empo_attn_shape *a, const key_block *kb, int64_t t) {
    int64_t e = key_end(a, t) - kb->s0;
    return e < 0 ? 0 : e < kb->n ? e : kb->n;
}

/* ---- forward ---- */

/* Output rows row0.. of a forward tile: the summed rows over their sums,
 * and the log-sum-exps. */
static void finish_rows(const scratch *w, float *out, float *lse, int64_t row0, int64_t mq, int64_t Dh) {
    for (int64_t i = 0; i < mq; i++) {
        float *o = out + (row0 + i) * Dh;
        const float l = w->l[i], c = l > 0.0f ? 1.0f / l : 0.0f;   /* no visible key: zeros */
#pragma omp simd
        for (int64_t d = 0; d < Dh; d++) o[d] = c * w->o[i * Dh + d];
        lse[row0 + i] = l > 0.0f ? w->m[i] + logf(l) : -INFINITY;
    }
}

/* The keys each query of a forward tile sees: last[i] = its last key
 * (padding lanes i >= mq: none); returns how many keys any of them sees. */
static int64_t tile_key_ends(float *last, const empo_attn_shape *a, int64_t r0, int64_t mq, int64_t wq) {
    int64_t end = 0;
    for (int64_t i = 0; i < wq; i++) {
        const int64_t e = i >= mq ? 0 : key_end(a, (r0 + i) % a->T);   /* row r's position is r % T */
        last[i] = (float)(e - 1);
        end = e > end ? e : end;
    }
    return end;
}

/* A tile of fewer than 8 queries (a decode step with few heads per KV
 * head): tile products would waste most of their lanes, so each query
 * is scored and summed on its own (attn_rows.c). */
static void forward_rows(scratch *w, const float *qt, const float *kh, const float *vh, const float *keep_b,
                         const empo_attn_shape *a, int64_t mq, int64_t end) {
    const int64_t Dh = a->Dh;
    const float *qs[8];
    for (int64_t i = 0; i < mq; i++) qs[i] = qt + i * Dh;
    for (int64_t s0 = 0; s0 < end; s0 += BK) {
        /* hidden keys' rows are clean, so their scores are finite until the bias hides them */
        const key_block kb = load_block(w, kh, vh, keep_b, s0, end - s0 < BK ? end - s0 : BK, Dh, 0);
        empo_attn_scores(w->s, BK, qs, mq, kb.k, kb.n, Dh, a->scale);
        for (int64_t i = 0; i < mq; i++) {
            const int64_t vis = (int64_t)w->last[i] + 1 - s0;
            float *p = w->s + i * BK, *o = w->o + i * Dh;
            empo_softmax_fold(p, kb.np, vis < 0 ? 0 : vis < kb.n ? vis : kb.n, kb.bias, &w->m[i], &w->l[i], o, Dh);
            empo_attn_add_rows(o, p, kb.v, kb.n, Dh);
        }
    }
}

/* Forward task u: a tile of up to BQ query rows of the rep * T rows of
 * the query heads that share KV head (b, kvh) — contiguous in q, so a
 * decode step (T = 1) still fills a tile with its heads. Per block of keys
 * St = K Q^T (queries along the rows: the keys need no packing), the
 * online softmax across the queries in vector lanes, then O += St^T V. */
static void forward_tile(scratch *w, float *out, float *lse, const float *q, const float *k, const float *v,
                         const float *keep, const empo_attn_shape *a, int64_t u) {
    const int64_t rows = a->Hq / a->Hkv * a->T, tiles = (rows + BQ - 1) / BQ, Dh = a->Dh;
    const int64_t g = u / tiles, r0 = u % tiles * BQ, b = g / a->Hkv;   /* g = b * Hkv + kvh */
    const int64_t mq = rows - r0 < BQ ? rows - r0 : BQ, wq = (mq + 7) & ~(int64_t)7, row0 = g * rows + r0;
    const float *qt = q + row0 * Dh, *kh = k + g * a->S * Dh, *vh = v + g * a->S * Dh;
    const float *keep_b = keep ? keep + b * a->S : NULL;
    const int64_t end = tile_key_ends(w->last, a, r0, mq, wq);
    for (int64_t i = 0; i < wq; i++) w->m[i] = -INFINITY, w->l[i] = 0.0f;
    memset(w->o, 0, sizeof(float) * (size_t)(mq * Dh));
    if (mq < 8) {
        forward_rows(w, qt, kh, vh, keep_b, a, mq, end);
        finish_rows(w, out, lse, row0, mq, Dh);
        return;
    }
    float *Qt = w->kt, *St = w->s;
    for (int64_t d = 0; d < Dh; d++) {
        for (int64_t i = 0; i < mq; i++) Qt[d * wq + i] = qt[i * Dh + d];
        for (int64_t i = mq; i < wq; i++) Qt[d * wq + i] = 0.0f;
    }
    for (int64_t s0 = 0; s0 < end; s0 += BK) {
        /* the products read clean rows; hidden keys' scores become -inf */
        const key_block kb = load_block(w, kh, vh, keep_b, s0, end - s0 < BK ? end - s0 : BK, Dh, 0);
        empo_tile_gemm(St, wq, kb.k, Dh, 1, Qt, wq, kb.n, wq, Dh, 0);
        for (int64_t j = 0; j < kb.n; j++) {
            /* a hidden key is past every query's last */
            const float key = kb.bias[j] != 0.0f ? INFINITY : (float)(s0 + j), scale = a->scale;
            const float *last = w->last;
            float *x = St + j * wq;
#pragma omp simd
            for (int64_t i = 0; i < wq; i++) {
                const float sx = scale * x[i];
                x[i] = key <= last[i] ? sx : -INFINITY;
            }
        }
        empo_softmax_fold_cols(St, kb.n, wq, w->m, w->l, w->o, mq, Dh);
        empo_tile_gemm(w->o, Dh, St, 1, wq, kb.v, Dh, mq, Dh, kb.n, 1);
    }
    finish_rows(w, out, lse, row0, mq, Dh);
}

void empo_k_attention_forward(float *out, float *lse, float *work, const float *q, const float *k,
                              const float *v, const float *keep, const empo_attn_shape *a) {
    const int64_t units = a->B * a->Hkv * ((a->Hq / a->Hkv * a->T + BQ - 1) / BQ);
    const int nt = empo_omp_threads_for(a->B * a->Hq * a->T * a->S * a->Dh);
    if (nt == 1) {   /* no OpenMP region for small work (a decode step): entering one costs ~0.4 us */
        scratch w = scratch_for(work, a->Dh, 0);
        for (int64_t u = 0; u < units; u++) forward_tile(&w, out, lse, q, k, v, keep, a, u);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        scratch w = scratch_for(work, a->Dh, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < units; u++) forward_tile(&w, out, lse, q, k, v, keep, a, u);
    }
}

/* ---- backward ---- */

typedef struct {
    float *dq, *dk, *dv, *delta;
    const float *dout, *q, *k, *v, *out, *keep, *lse;
    const empo_attn_shape *a;
} bwd_args;

/* Query rows t0..t0+mq-1 of head row block r0 (= (b*Hq + h)*T) against key
 * block kb: P into w->s and dS into w->ds, then whichever of dV_blk, dK_blk
 * (w->dvb, w->dkb) and the rows' dq are wanted. */
static void tile_backward(scratch *w, const bwd_args *g, const key_block *kb, int64_t r0, int64_t t0,
                          int64_t mq, int want_dkv, int want_dq) {
    const empo_attn_shape *a = g->a;
    const int64_t Dh = a->Dh, r = r0 + t0;
    const float *qt = g->q + r * Dh, *gt = g->dout + r * Dh;
    empo_tile_gemm(w->s, BK, qt, Dh, 1, w->kt, BK, mq, kb->np, Dh, 0);
    empo_tile_gemm(w->ds, BK, gt, Dh, 1, w->vt, BK, mq, kb->np, Dh, 0);
    for (int64_t i = 0; i < mq; i++) {
        const float L = g->lse[r + i], D = g->delta[r + i], scale = a->scale;
        const int64_t vis = L > -INFINITY ? visible(a, kb, t0 + i) : 0;   /* a row that saw nothing passes nothing */
        const float *bias = kb->bias;
        float *sr = w->s + i * BK, *dr = w->ds + i * BK;
#pragma omp simd
        for (int64_t j = 0; j < kb->np; j++) {
            const int seen = j < vis && bias[j] == 0.0f;
            const float p = seen ? empo_k_expf(scale * sr[j] - L) : 0.0f;
            sr[j] = p;
            dr[j] = seen ? scale * p * (dr[j] - D) : 0.0f;
        }
    }
    if (want_dkv && g->dv) empo_tile_gemm(w->dvb, Dh, w->s, 1, BK, gt, Dh, kb->n, Dh, mq, 1);
    if (want_dkv && g->dk) empo_tile_gemm(w->dkb, Dh, w->ds, 1, BK, qt, Dh, kb->n, Dh, mq, 1);
    if (want_dq) empo_tile_gemm(g->dq + r * Dh, Dh, w->ds, BK, 1, kb->k, Dh, mq, Dh, kb->n, 1);
}

/* Key blocks blk0..blk1-1 of KV head (b, kvh): their dk, dv rows, summed
 * over the query heads that share the KV head and every query row that
 * sees them; with want_dq, also those heads' dq (which must start at 0). */
static void kv_blocks_backward(scratch *w, const bwd_args *g, int64_t b, int64_t kvh, int64_t blk0,
                               int64_t blk1, int want_dq) {
    const empo_attn_shape *a = g->a;
    const int64_t Dh = a->Dh, rep = a->Hq / a->Hkv, shift = a->S - a->T;
    const int64_t off = (b * a->Hkv + kvh) * a->S * Dh;
    const float *keep_b = g->keep ? g->keep + b * a->S : NULL;
    for (int64_t blk = blk0; blk < blk1; blk++) {
        const int64_t s0 = blk * BK, n = a->S - s0 < BK ? a->S - s0 : BK;
        const key_block kb = load_block(w, g->k + off, g->v + off, keep_b, s0, n, Dh, 1);
        memset(w->dkb, 0, sizeof(float) * (size_t)(n * Dh));
        memset(w->dvb, 0, sizeof(float) * (size_t)(n * Dh));
        const int64_t t_first = a->causal && s0 - shift > 0 ? s0 - shift : 0;   /* first query to see key s0 */
        for (int64_t h = kvh * rep; h < (kvh + 1) * rep; h++)
            for (int64_t t0 = t_first; t0 < a->T; t0 += BQ)
                tile_backward(w, g, &kb, (b * a->Hq + h) * a->T, t0, a->T - t0 < BQ ? a->T - t0 : BQ, 1, want_dq);
        if (g->dk) memcpy(g->dk + off + s0 * Dh, w->dkb, sizeof(float) * (size_t)(n * Dh));
        if (g->dv) memcpy(g->dv + off + s0 * Dh, w->dvb, sizeof(float) * (size_t)(n * Dh));
    }
}

/* Fused: every key block of KV head pair u = (b, kvh), and the dq rows of
 * the query heads that share it. */
static void kv_pair_backward(scratch *w, const bwd_args *g, int64_t u) {
    const empo_attn_shape *a = g->a;
    const int64_t rep = a->Hq / a->Hkv, b = u / a->Hkv, kvh = u % a->Hkv;
    const int64_t r0 = (b * a->Hq + kvh * rep) * a->T, n = rep * a->T * a->Dh;
    if (g->dq) memset(g->dq + r0 * a->Dh, 0, sizeof(float) * (size_t)n);
    kv_blocks_backward(w, g, b, kvh, 0, (a->S + BK - 1) / BK, g->dq != NULL);
}

/* dq of query rows t0..t0+BQ-1 of head (b, h), over every key block they see. */
static void q_tile_backward(scratch *w, const bwd_args *g, int64_t u) {
    const empo_attn_shape *a = g->a;
    const int64_t tiles = (a->T + BQ - 1) / BQ, Dh = a->Dh;
    const int64_t bh = u / tiles, t0 = u % tiles * BQ, h = bh % a->Hq, b = bh / a->Hq;
    const int64_t mq = a->T - t0 < BQ ? a->T - t0 : BQ, r0 = bh * a->T;
    const int64_t off = (b * a->Hkv + h / (a->Hq / a->Hkv)) * a->S * Dh;
    const float *keep_b = g->keep ? g->keep + b * a->S : NULL;
    memset(g->dq + (r0 + t0) * Dh, 0, sizeof(float) * (size_t)(mq * Dh));
    const int64_t end = key_end(a, t0 + mq - 1);
    for (int64_t s0 = 0; s0 < end; s0 += BK) {
        const int64_t n = a->S - s0 < BK ? a->S - s0 : BK;   /* whole blocks, as kv_blocks_backward */
        const key_block kb = load_block(w, g->k + off, g->v + off, keep_b, s0, n, Dh, 1);
        tile_backward(w, g, &kb, r0, t0, mq, 0, 1);
    }
}

static float dotf(const float *x, const float *y, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

/* The whole backward as worksharing loops: called inside a parallel region
 * by every thread, or directly (a team of one) for small work. */
static void backward_loops(const bwd_args *g, float *work, int fused) {
    const empo_attn_shape *a = g->a;
    const int64_t rows = a->B * a->Hq * a->T, Dh = a->Dh, pairs = a->B * a->Hkv;
    const int64_t blocks = (a->S + BK - 1) / BK, tiles = (a->T + BQ - 1) / BQ;
    scratch w = scratch_for(work, Dh, omp_get_thread_num());
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) g->delta[r] = dotf(g->dout + r * Dh, g->out + r * Dh, Dh);
    if (fused) {
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < pairs; u++) kv_pair_backward(&w, g, u);
        return;
    }
    if (g->dk || g->dv) {
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < pairs * blocks; u++)
            kv_blocks_backward(&w, g, u / blocks / a->Hkv, u / blocks % a->Hkv, u % blocks, u % blocks + 1, 0);
    }
    if (g->dq) {
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < a->B * a->Hq * tiles; u++) q_tile_backward(&w, g, u);
    }
}

void empo_k_attention_backward(float *dq, float *dk, float *dv, float *work, const float *dout, const float *q,
                               const float *k, const float *v, const float *out, const float *keep,
                               const float *lse, const empo_attn_shape *a) {
    const int64_t rows = a->B * a->Hq * a->T;
    const int nt = empo_omp_threads_for(rows * a->S * a->Dh);
    const bwd_args g = {dq, dk, dv, work + (int64_t)omp_get_max_threads() * scratch_floats(a->Dh),
                        dout, q, k, v, out, keep, lse, a};
    /* one task per (b, KV head) when that keeps every thread busy */
    const int fused = a->B * a->Hkv >= 4 * (int64_t)nt && (dk || dv);
    if (nt == 1) {
        backward_loops(&g, work, fused);
        return;
    }
#pragma omp parallel num_threads(nt)
    backward_loops(&g, work, fused);
}
