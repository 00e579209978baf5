/* kv_attention.c — the fast kernels of the sampling engine's attention
 * (kernels/kv_attention.h). A decode step's attention over a shared prefix (a
 * prompt) and each row's own positions:
 * one task per (prefix row, KV head, block of 16 queries), whose queries —
 * query heads of the rows sharing that prefix — are gathered into a tile
 * that meets each block of prefix keys at once: S^T = K Q^T and O += P V are
 * tile products (kernels/tile_gemm.h) with an online softmax between them
 * that runs across the queries in vector lanes. Then each row's own
 * positions, for that row's query heads together: too few queries to pay
 * for packing, so keys are scored eight at a time with the partial sums in
 * registers and value rows summed with 32 output columns in registers.
 * Hidden positions are never read. And a prefill's causal attention over
 * the prompt slots, with the same prefix tiles, each query masked past its
 * own token. Scratch comes from the caller; the kernels cannot fail. The
 * naive decode version is in kernels/ref/kv_attention.c. */
#include <omp.h>
#include "kernels/parallel.h"
#include "attn_tile.h"
#include "kernels/kv_attention.h"
#include "kernels/tile_gemm.h"

enum {
    KEY_BLOCK = 64,   /* keys scored at once */
    Q_BLOCK = 16      /* queries processed together (that share a prefix) */
};
_Static_assert((int)Q_BLOCK <= (int)EMPO_FOLD_MAX_W, "a task's queries fold in one pass");

/* asks for the lines of x[0 .. n) ahead of their use */
static inline void prefetch(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) _mm_prefetch((const char *)(x + i), _MM_HINT_T0);
}

/* The running softmax of one query: max m, sum l of exp(score - m), and
 * its output row o (the weighted sum so far). */
typedef struct { float m, l; float *o; } running;

/* nq (<= Q_BLOCK) queries q[i] with outputs r[i] over L keys and values
 * (a row's own positions: few queries, so no packing): blocks of
 * KEY_BLOCK keys, each read once for all the queries. */
static void attend(running *r, const float *const *q, int64_t nq, const float *K, const float *V, int64_t L,
                   int64_t Dh, float scale) {
    float sc[Q_BLOCK * KEY_BLOCK];
    for (int64_t s0 = 0; s0 < L; s0 += KEY_BLOCK) {
        const int64_t n = L - s0 < KEY_BLOCK ? L - s0 : KEY_BLOCK, np = (n + 7) & ~(int64_t)7;
        prefetch(V + s0 * Dh, n * Dh);
        empo_attn_scores(sc, KEY_BLOCK, q, nq, K + s0 * Dh, n, Dh, scale);
        for (int64_t i = 0; i < nq; i++) {
            float *p = sc + i * KEY_BLOCK;
            empo_softmax_fold(p, np, n, NULL, &r[i].m, &r[i].l, r[i].o, Dh);
            empo_attn_add_rows(r[i].o, p, V + s0 * Dh, n, Dh);
        }
    }
}

/* The same over a shared prefix for a task's nq queries, whose transposes
 * times the softmax scale are the columns of Qt [Dh, w] (w: nq rounded
 * up to 8, zero columns beyond; scaled here, the scores need no pass of
 * their own) and whose outputs r[i].o are the rows of O [nq, Dh]. Per block of
 * keys, St = K Qt gives the scores with the queries along the rows, so the
 * block needs no packing and the online softmax runs across queries in
 * vector lanes; then O += St^T V, the transpose being just strides. */
static void attend_prefix(running *r, const float *Qt, float *O, int64_t nq, int64_t w, const float *K,
                          const float *V, int64_t L, int64_t Dh, const int64_t *last) {
    float St[KEY_BLOCK * Q_BLOCK], m[Q_BLOCK], l[Q_BLOCK];
    for (int64_t i = 0; i < w; i++) m[i] = -INFINITY, l[i] = 0.0f;
    for (int64_t s0 = 0; s0 < L; s0 += KEY_BLOCK) {
        const int64_t n = L - s0 < KEY_BLOCK ? L - s0 : KEY_BLOCK;
        prefetch(V + s0 * Dh, n * Dh);
        empo_tile_gemm(St, w, K + s0 * Dh, Dh, 1, Qt, w, n, w, Dh, 0);
        if (last)   /* causal: key s0 + k is hidden from the queries before it */
            for (int64_t i = 0; i < nq; i++)
                for (int64_t k = last[i] + 1 - s0 < 0 ? 0 : last[i] + 1 - s0; k < n; k++) St[k * w + i] = -INFINITY;
        empo_softmax_fold_cols(St, n, w, m, l, O, nq, Dh);
        empo_tile_gemm(O, Dh, St, 1, w, V + s0 * Dh, Dh, nq, Dh, n, 1);
    }
    for (int64_t i = 0; i < nq; i++) r[i].m = m[i], r[i].l = l[i];
}

/* Qt [Dh, w] = the nq queries qs[c] times scale as columns, columns nq..w-1
 * zero; a row of Qt at a time, so that its stores fill one line. */
static void queries_t(float *Qt, const float *const *qs, int64_t nq, int64_t w, int64_t Dh, float scale) {
    for (int64_t d = 0; d < Dh; d++) {
        for (int64_t c = 0; c < nq; c++) Qt[d * w + c] = scale * qs[c][d];
        for (int64_t c = nq; c < w; c++) Qt[d * w + c] = 0.0f;
    }
}

typedef struct {
    float *out, *work;
    const float *q, *pk, *pv, *k, *v;
    const int64_t *plen, *order, *start, *len;
    const empo_kv_shape *a;
    int64_t blocks;   /* query blocks of the largest group */
} kv_job;

/* A task's scratch: its queries transposed [Dh, Q_BLOCK] and their
 * outputs [Q_BLOCK, Dh]. */
static int64_t task_floats(int64_t Dh) { return 2 * Q_BLOCK * Dh; }

int64_t empo_k_kv_attention_work_for(const empo_kv_shape *a, int threads) { return threads * task_floats(a->Dh); }

int64_t empo_k_kv_attention_work(const empo_kv_shape *a) {
    return empo_k_kv_attention_work_for(a, omp_get_max_threads());
}

/* The queries qi0 .. qi0+nq-1 of group p, KV head h: query qi is head
 * h * g + qi % g of row order[start[p] + qi / g]. */
static void attend_queries(const kv_job *j, float *work, int64_t p, int64_t h, int64_t qi0, int64_t nq) {
    const empo_kv_shape *a = j->a;
    const int64_t g = a->Hq / a->Hkv, Dh = a->Dh;
    const int64_t w = (nq + 7) & ~(int64_t)7;
    float *Qt = work, *O = Qt + Q_BLOCK * Dh;
    const float *qs[Q_BLOCK];
    running r[Q_BLOCK];
    int64_t rows[Q_BLOCK];
    for (int64_t i = 0; i < nq; i++) {
        const int64_t qi = qi0 + i, b = j->order[j->start[p] + qi / g], row = b * a->Hq + h * g + qi % g;
        rows[i] = b;
        qs[i] = j->q + row * Dh;
        r[i].m = -INFINITY;
        r[i].l = 0.0f;
        r[i].o = O + i * Dh;
    }
    memset(O, 0, sizeof(float) * (size_t)(nq * Dh));
    if (j->pk && j->plen[p] > 0) {   /* the shared prefix: once for every query of the group */
        queries_t(Qt, qs, nq, w, Dh, a->scale);
        const int64_t off = (p * a->Hkv + h) * a->Sp * Dh;
        attend_prefix(r, Qt, O, nq, w, j->pk + off, j->pv + off, j->plen[p], Dh, NULL);
    }
    for (int64_t i = 0; i < nq;) {   /* each row's own positions, for its queries in this block */
        int64_t e = i + 1;
        while (e < nq && rows[e] == rows[i]) e++;
        const int64_t off = (rows[i] * a->Hkv + h) * a->S * Dh;
        attend(r + i, qs + i, e - i, j->k + off, j->v + off, j->len[rows[i]], Dh, a->scale);
        i = e;
    }
    for (int64_t i = 0; i < nq; i++) {
        const int64_t row = rows[i] * a->Hq + h * g + (qi0 + i) % g;
        const float c = r[i].l > 0.0f ? 1.0f / r[i].l : 0.0f;   /* no position: zeros */
        float *o = j->out + row * Dh;
#pragma omp simd
        for (int64_t d = 0; d < Dh; d++) o[d] = c * O[i * Dh + d];
    }
}

/* The keys of the task (group p, KV head h, queries qi .. end-1), asked
 * for before its prefix is scored: a step reads each layer's cache once,
 * so they come from memory (the values are asked for a block at a time,
 * while the keys are scored). */
static void prefetch_keys(const kv_job *j, int64_t p, int64_t h, int64_t qi, int64_t end) {
    const empo_kv_shape *a = j->a;
    const int64_t g = a->Hq / a->Hkv, Dh = a->Dh;
    if (j->pk && j->plen[p] > 0) prefetch(j->pk + (p * a->Hkv + h) * a->Sp * Dh, j->plen[p] * Dh);
    for (int64_t r = qi / g; r * g < end; r++) {
        const int64_t b = j->order[j->start[p] + r];
        prefetch(j->k + (b * a->Hkv + h) * a->S * Dh, j->len[b] * Dh);
    }
}

/* tasks lo..hi-1 = (prefix row, KV head, block of Q_BLOCK queries): a
 * prompt with many samples still spreads over the threads */
static void kv_tasks(void *ctx, int64_t lo, int64_t hi) {
    const kv_job *j = ctx;
    const int64_t g = j->a->Hq / j->a->Hkv, blocks = j->blocks;
    float *work = j->work + omp_get_thread_num() * task_floats(j->a->Dh);
    for (int64_t t = lo; t < hi; t++) {
        const int64_t p = t / (j->a->Hkv * blocks), h = t / blocks % j->a->Hkv, qi = t % blocks * Q_BLOCK;
        const int64_t nq = (j->start[p + 1] - j->start[p]) * g, n = nq - qi < Q_BLOCK ? nq - qi : Q_BLOCK;
        if (qi >= nq) continue;
        prefetch_keys(j, p, h, qi, qi + n);
        attend_queries(j, work, p, h, qi, n);
    }
}

/* Query blocks of the largest group: tasks per (prefix row, KV head). */
static int64_t blocks_of(const int64_t *start, const empo_kv_shape *a) {
    int64_t most = 0;
    for (int64_t p = 0; p < a->P; p++) most = start[p + 1] - start[p] > most ? start[p + 1] - start[p] : most;
    return (most * (a->Hq / a->Hkv) + Q_BLOCK - 1) / Q_BLOCK;
}

int64_t empo_k_kv_attention_tasks(const int64_t *start, const empo_kv_shape *a) {
    return a->P * a->Hkv * blocks_of(start, a);
}

void empo_k_kv_attention(float *out, float *work, const float *q, const float *pk, const float *pv,
                         const int64_t *plen, const int64_t *order, const int64_t *start, const float *k,
                         const float *v, const int64_t *len, const empo_kv_shape *a) {
    const kv_job j = {out, work, q, pk, pv, k, v, plen, order, start, len, a, blocks_of(start, a)};
    int64_t keys = 0;   /* key rows read, for the threading decision */
    for (int64_t p = 0; p < a->P; p++) keys += pk ? plen[p] : 0;
    for (int64_t b = 0; b < a->B; b++) keys += len[b];
    empo_parallel_for(a->P * a->Hkv * j.blocks, keys * a->Hq * a->Dh * 4, kv_tasks, (void *)&j);
}

void empo_k_kv_attention_range(int64_t lo, int64_t hi, float *out, float *work, const float *q, const float *pk,
                               const float *pv, const int64_t *plen, const int64_t *order, const int64_t *start,
                               const float *k, const float *v, const int64_t *len, const empo_kv_shape *a) {
    const kv_job j = {out, work, q, pk, pv, k, v, plen, order, start, len, a, blocks_of(start, a)};
    kv_tasks((void *)&j, lo, hi);
}

/* ---- a prefill's causal attention over the prompt slots ---- */

/* Query blocks of prompt i: its tokens' query heads, Q_BLOCK at a time. */
static int64_t prompt_blocks(const empo_kv_prompts *p, int64_t i, int64_t g) {
    return ((p->last_only ? 1 : p->start[i + 1] - p->start[i]) * g + Q_BLOCK - 1) / Q_BLOCK;
}

int64_t empo_k_kv_prefill_tasks(int64_t *task_start, const empo_kv_prompts *p, const empo_kv_shape *a) {
    const int64_t g = a->Hq / a->Hkv;
    task_start[0] = 0;
    for (int64_t i = 0; i < p->n; i++) task_start[i + 1] = task_start[i] + a->Hkv * prompt_blocks(p, i, g);
    return task_start[p->n];
}

/* The row of q and out of prompt i's query qi for KV head h (g query
 * heads each): its token's, or row i when only the last tokens run. */
static int64_t query_row(const empo_kv_prompts *p, const empo_kv_shape *a, int64_t i, int64_t h, int64_t g,
                         int64_t qi) {
    return (p->last_only ? i : p->start[i] + qi / g) * a->Hq + h * g + qi % g;
}

/* Task t: prompt i (task_start[i] <= t < task_start[i + 1]), KV head h,
 * queries qi0 .. of its tokens (query qi: token qi / g, head h g + qi % g)
 * against the slot's keys 0 .. the block's last token, each query masked
 * past its own token. */
static void prefill_task(const empo_kv_prompts *p, const int64_t *task_start, int64_t t, float *out, float *work,
                         const float *q, const float *pk, const float *pv, const empo_kv_shape *a) {
    const int64_t g = a->Hq / a->Hkv, Dh = a->Dh;
    int64_t lo = 0, hi = p->n;   /* the prompt: the last i with task_start[i] <= t */
    while (hi - lo > 1) {
        const int64_t mid = (lo + hi) / 2;
        if (task_start[mid] <= t) lo = mid;
        else hi = mid;
    }
    const int64_t i = lo, blocks = prompt_blocks(p, i, g), u = t - task_start[i];
    const int64_t len = p->start[i + 1] - p->start[i], first = p->last_only ? (len - 1) * g : 0;
    const int64_t h = u / blocks, qi0 = first + u % blocks * Q_BLOCK;
    const int64_t nq = len * g - qi0 < Q_BLOCK ? len * g - qi0 : Q_BLOCK, w = (nq + 7) & ~(int64_t)7;
    float *Qt = work, *O = Qt + Q_BLOCK * Dh;
    running r[Q_BLOCK];
    int64_t last[Q_BLOCK];
    const float *qs[Q_BLOCK] = {NULL};   /* (nq >= 1: each prompt has a token) */
    for (int64_t c = 0; c < nq; c++) qs[c] = q + query_row(p, a, i, h, g, qi0 + c) * Dh;
    queries_t(Qt, qs, nq, w, Dh, a->scale);
    for (int64_t c = 0; c < nq; c++) last[c] = (qi0 + c) / g;
    memset(O, 0, sizeof(float) * (size_t)(nq * Dh));
    const int64_t off = (p->slot[i] * a->Hkv + h) * a->Sp * Dh;
    attend_prefix(r, Qt, O, nq, w, pk + off, pv + off, last[nq - 1] + 1, Dh, last);
    for (int64_t c = 0; c < nq; c++) {   /* every query sees its own token: l > 0 */
        const float inv = 1.0f / r[c].l;
        float *o = out + query_row(p, a, i, h, g, qi0 + c) * Dh;
#pragma omp simd
        for (int64_t d = 0; d < Dh; d++) o[d] = inv * O[c * Dh + d];
    }
}

void empo_k_kv_prefill_range(int64_t lo, int64_t hi, float *out, float *work, const float *q, const float *pk,
                             const float *pv, const empo_kv_prompts *p, const int64_t *task_start,
                             const empo_kv_shape *a) {
    float *mine = work + omp_get_thread_num() * task_floats(a->Dh);
    for (int64_t t = lo; t < hi; t++) prefill_task(p, task_start, t, out, mine, q, pk, pv, a);
}
