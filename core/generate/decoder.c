/* decoder.c — the C decoder's ops (core/include/empo/decoder.h): validates a
 * decoder's weights and caches once, holds references to them, its rope
 * table and its step scratch, checks each step's rows and each prefill's
 * prompts, and runs the decode_step / decode_prefill slots of the table
 * where the weights live (kernels/cpu/decode_step.c, or
 * kernels/cuda/decode_step.cu: then each call's index arrays go up first,
 * in one copy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd_internal.h"
#include "generate_internal.h"
#include "kernels/team.h"

/* tensors per layer in empo_decoder_layer_spec: norms, projections, biases and caches; then the adapters' */
enum { PLAIN = 17, WEIGHTS = PLAIN + 2 * EMPO_LORA_SLOTS };
#define MAX_ROWS ((int64_t)1 << 20)   /* tokens of a prefill, rows of a step: units of the work shares */

struct empo_decoder {
    empo_decode_model m;
    const empo_kernel_table *K;   /* the weights' device's table */
    empo_tensor *index;           /* on a device: a step's index arrays (step_index_count), uploaded each step */
    int64_t *staging;             /* their host copy */
    /* EMPO_CUDA_GRAPHS=1 on a device with graphs: the step of B rows, recorded
     * the second time B is seen (the first warms the products up) and
     * replayed after; graphs[B], seen[B] for B up to max_batch; the logits
     * buffer they write (another one: recorded again) */
    void **graphs;
    unsigned char *seen;
    void *graph_logits;
    int64_t graphs_recorded, graph_replays;
    empo_decode_layer *layer;
    empo_tensor **held;   /* every tensor referenced, released on free */
    int64_t nheld, max_batch;
    empo_tensor *scratch, *rope;   /* tensors: counted in empo's memory figures */
    int64_t scratch_floats;
    int64_t *order, *start, *lens;
    uint64_t *claims;   /* the step team's work shares (kernels/team.h) */
};

/* t is of dtype dt (f32, or bf16 for the weights of a bf16 decoder),
 * contiguous, of shape (n0[, n1[, n2, n3]]) — ndim values given; a dim of
 * -1 matches anything — and on the embedding's device (on). NULL fails
 * unless `optional`. */
static int expect_dt(const empo_tensor *on, const char *what, int64_t layer, const empo_tensor *t, int optional,
                     int dt, int ndim, const int64_t *dims) {
    char where[48] = "";
    if (layer >= 0) snprintf(where, sizeof where, "layer %lld ", (long long)layer);
    if (!t) return optional ? EMPO_OK : empo_fail(EMPO_E_ARG, "decoder: %s%s is missing", where, what);
    if (t->dtype != dt)
        return empo_fail(EMPO_E_DTYPE, "decoder: %s%s is %s, but the weights are %s (as layer 0's q)%s", where, what,
                         empo_desc(t), dt == EMPO_BF16 ? "bf16" : "f32",
                         ndim == 2 ? ": the projections and the LM head must all be f32 or all bf16" : "");
    EMPO_TRY(empo_check_input("decoder", what, t, EMPO_DT(dt), "embed", on));
    int ok = t->ndim == ndim && empo_tensor_is_contiguous(t);
    for (int d = 0; ok && d < ndim; d++) ok = dims[d] < 0 || t->shape[d] == dims[d];
    if (ok) return EMPO_OK;
    char want[128] = "[";
    for (int d = 0; d < ndim; d++) {
        char part[24];
        snprintf(part, sizeof part, d ? ", %lld" : "%lld", (long long)dims[d]);
        if (dims[d] < 0) snprintf(part, sizeof part, d ? ", *" : "*");
        strncat(want, part, sizeof want - strlen(want) - 1);
    }
    strncat(want, "]", sizeof want - strlen(want) - 1);
    return empo_fail(EMPO_E_SHAPE, "decoder: %s%s is %s, expected a contiguous %s %s", where, what, empo_desc(t),
                     dt == EMPO_BF16 ? "bf16" : "f32", want);
}

static int expect(const empo_tensor *on, const char *what, int64_t layer, const empo_tensor *t, int optional, int ndim,
                  const int64_t *dims) {
    return expect_dt(on, what, layer, t, optional, EMPO_F32, ndim, dims);
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})

static int check_layer(const empo_decoder_spec *s, int64_t l, const empo_decode_model *m, int64_t max_batch) {
    const empo_decoder_layer_spec *y = &s->layer[l];
    const int64_t D = m->D, F = m->F, qd = m->Hq * m->Dh, kd = m->Hkv * m->Dh;
    const int wdt = m->bf16 ? EMPO_BF16 : EMPO_F32;
    EMPO_TRY(expect(s->embed, "input_norm", l, y->input_norm, 0, 1, DIMS(D)));
    EMPO_TRY(expect(s->embed, "post_norm", l, y->post_norm, 0, 1, DIMS(D)));
    EMPO_TRY(expect_dt(s->embed, "q", l, y->q, 0, wdt, 2, DIMS(qd, D)));
    EMPO_TRY(expect_dt(s->embed, "k", l, y->k, 0, wdt, 2, DIMS(kd, D)));
    EMPO_TRY(expect_dt(s->embed, "v", l, y->v, 0, wdt, 2, DIMS(kd, D)));
    EMPO_TRY(expect_dt(s->embed, "o", l, y->o, 0, wdt, 2, DIMS(D, qd)));
    EMPO_TRY(expect(s->embed, "q_bias", l, y->q_bias, 1, 1, DIMS(qd)));
    EMPO_TRY(expect(s->embed, "k_bias", l, y->k_bias, 1, 1, DIMS(kd)));
    EMPO_TRY(expect(s->embed, "v_bias", l, y->v_bias, 1, 1, DIMS(kd)));
    EMPO_TRY(expect(s->embed, "o_bias", l, y->o_bias, 1, 1, DIMS(D)));
    EMPO_TRY(expect_dt(s->embed, "gate", l, y->gate, 0, wdt, 2, DIMS(F, D)));
    EMPO_TRY(expect_dt(s->embed, "up", l, y->up, 0, wdt, 2, DIMS(F, D)));
    EMPO_TRY(expect_dt(s->embed, "down", l, y->down, 0, wdt, 2, DIMS(D, F)));
    EMPO_TRY(expect(s->embed, "prompt_k", l, y->prompt_k, 0, 4, DIMS(m->slots, m->Hkv, m->Sp, m->Dh)));
    EMPO_TRY(expect(s->embed, "prompt_v", l, y->prompt_v, 0, 4, DIMS(m->slots, m->Hkv, m->Sp, m->Dh)));
    EMPO_TRY(expect(s->embed, "own_k", l, y->own_k, 0, 4, DIMS(-1, m->Hkv, m->S, m->Dh)));
    EMPO_TRY(expect(s->embed, "own_v", l, y->own_v, 0, 4, DIMS(-1, m->Hkv, m->S, m->Dh)));
    if (y->own_k->shape[0] < max_batch || y->own_v->shape[0] < max_batch)
        return empo_fail(EMPO_E_SHAPE, "decoder: layer %lld own cache %s has fewer rows than max_batch %lld",
                         (long long)l, empo_desc(y->own_k), (long long)max_batch);
    static const char *const lora_name[EMPO_LORA_SLOTS] = {"q", "k", "v", "o", "gate", "up", "down"};
    const int64_t lora_in[EMPO_LORA_SLOTS] = {D, D, D, qd, D, D, F}, lora_out[EMPO_LORA_SLOTS] = {qd, kd, kd, D, F, F, D};
    for (int i = 0; i < EMPO_LORA_SLOTS; i++) {
        const empo_tensor *a = y->lora_a[i], *b = y->lora_b[i];
        if (!a && !b) continue;
        char what[32];
        snprintf(what, sizeof what, "%s lora_A", lora_name[i]);
        EMPO_TRY(expect(s->embed, what, l, a, 0, 2, DIMS(-1, lora_in[i])));
        snprintf(what, sizeof what, "%s lora_B", lora_name[i]);
        EMPO_TRY(expect(s->embed, what, l, b, 0, 2, DIMS(lora_out[i], a->shape[0])));
    }
    if (!(y->input_eps >= 0.0) || !(y->post_eps >= 0.0))
        return empo_fail(EMPO_E_ARG, "decoder: layer %lld norm eps %g / %g must be >= 0", (long long)l, y->input_eps,
                         y->post_eps);
    return EMPO_OK;
}

/* The model's sizes, from the spec and layer 0 (checked against all). */
static int sizes(empo_decode_model *m, const empo_decoder_spec *s) {
    if (!s || !s->layer || s->layers < 1)
        return empo_fail(EMPO_E_ARG, "decoder: the spec needs at least one layer");
    if (s->heads < 1 || s->kv_heads < 1 || s->heads % s->kv_heads != 0)
        return empo_fail(EMPO_E_ARG, "decoder: %lld query heads are not a multiple of %lld KV heads",
                         (long long)s->heads, (long long)s->kv_heads);
    if (!(s->rope_theta > 0.0) || !(s->norm_eps >= 0.0))
        return empo_fail(EMPO_E_ARG, "decoder: rope_theta %g must be > 0 and norm_eps %g >= 0", s->rope_theta,
                         s->norm_eps);
    if (!s->embed) return empo_fail(EMPO_E_ARG, "decoder: embed is missing");
    const int embed_dt = s->embed->dtype == EMPO_BF16 ? EMPO_BF16 : EMPO_F32;
    EMPO_TRY(expect_dt(s->embed, "embed", -1, s->embed, 0, embed_dt, 2, DIMS(-1, -1)));
    const empo_decoder_layer_spec *y = &s->layer[0];
    EMPO_TRY(expect(s->embed, "prompt_k", 0, y->prompt_k, 0, 4, DIMS(-1, s->kv_heads, -1, -1)));
    EMPO_TRY(expect(s->embed, "own_k", 0, y->own_k, 0, 4, DIMS(-1, s->kv_heads, -1, -1)));
    const int bf16 = y->q && y->q->dtype == EMPO_BF16;   /* layer 0's q decides; check_layer holds the rest to it */
    EMPO_TRY(expect_dt(s->embed, "gate", 0, y->gate, 0, bf16 ? EMPO_BF16 : EMPO_F32, 2,
                       DIMS(-1, s->embed->shape[1])));
    *m = (empo_decode_model){.L = s->layers, .D = s->embed->shape[1], .Hq = s->heads, .Hkv = s->kv_heads,
                             .Dh = y->prompt_k->shape[3], .F = y->gate->shape[0], .V = s->embed->shape[0],
                             .slots = y->prompt_k->shape[0], .Sp = y->prompt_k->shape[2], .S = y->own_k->shape[2],
                             .theta = s->rope_theta, .norm_eps = (float)s->norm_eps,
                             .threads = empo_get_num_threads(), .bf16 = bf16,
                             .embed_bf16 = s->embed->dtype == EMPO_BF16, .lora_scaling = (float)s->lora_scaling};
    for (int64_t l = 0; l < s->layers; l++)   /* the scratch's size: the largest rank, and whether the MLP unfuses */
        for (int i = 0; i < EMPO_LORA_SLOTS; i++) {
            const empo_tensor *a = s->layer[l].lora_a[i];
            if (!a) continue;
            if (a->ndim == 2 && a->shape[0] > m->lora_rank) m->lora_rank = a->shape[0];
            if (i == EMPO_LORA_GATE || i == EMPO_LORA_UP) m->lora_mlp = 1;
        }
    if (m->Dh % 2 != 0 || m->Dh == 0)
        return empo_fail(EMPO_E_SHAPE, "decoder: head_dim %lld must be even for rotary embeddings", (long long)m->Dh);
    EMPO_TRY(expect(s->embed, "norm", -1, s->norm, 0, 1, DIMS(m->D)));
    EMPO_TRY(expect_dt(s->embed, "head", -1, s->head, 0, bf16 ? EMPO_BF16 : EMPO_F32, 2, DIMS(m->V, m->D)));
    return EMPO_OK;
}

static const float *data(const empo_tensor *t) { return t ? empo_tensor_data(t) : NULL; }
static const void *weights(const empo_tensor *t) { return empo_tensor_data(t); }   /* f32 or bf16 */

/* i64 values a step's index arrays take: ids, pos, col, prow, lens [B];
 * plen [slots]; order [B + 1]; start [slots + 2] */
static int64_t step_index_count(int64_t B, int64_t slots) { return 5 * B + slots + (B + 1) + (slots + 2); }

int empo_decoder_new(empo_decoder **out, const empo_decoder_spec *s, int64_t max_batch) {
    if (!out) return empo_fail(EMPO_E_ARG, "decoder_new: NULL out");
    *out = NULL;
    empo_decode_model m;
    EMPO_TRY(sizes(&m, s));
    if (max_batch < 1 || max_batch > MAX_ROWS)
        return empo_fail(EMPO_E_ARG, "decoder_new: max_batch %lld must be 1 to %lld", (long long)max_batch,
                         (long long)MAX_ROWS);
    for (int64_t l = 0; l < s->layers; l++) EMPO_TRY(check_layer(s, l, &m, max_batch));
    empo_decoder *d = calloc(1, sizeof *d);
    if (!d) return empo_fail(EMPO_E_NOMEM, "decoder_new: out of memory");
    d->m = m;
    d->max_batch = max_batch;
    d->K = empo_kernels_of(s->embed);
    const int device = empo_tensor_device(s->embed);
    d->scratch_floats = d->K->decode_scratch_floats(&m, max_batch);
    d->layer = calloc((size_t)m.L, sizeof *d->layer);
    d->held = calloc((size_t)(m.L * WEIGHTS + 3), sizeof *d->held);
    d->scratch = empo_tensor_new_on(1, &d->scratch_floats, EMPO_F32, device);
    int index_ok = 1;
    if (device != EMPO_CPU) {
        const int64_t n = step_index_count(max_batch, m.slots);
        d->index = empo_tensor_new_on(1, &n, EMPO_I64, device);
        d->staging = malloc(sizeof(int64_t) * (size_t)n);
        index_ok = d->index && d->staging;
        const char *g = getenv("EMPO_CUDA_GRAPHS");
        if (g && strcmp(g, "1") == 0 && d->K->device->capture_begin) {
            d->graphs = calloc((size_t)max_batch + 1, sizeof *d->graphs);
            d->seen = calloc((size_t)max_batch + 1, 1);
            index_ok = index_ok && d->graphs && d->seen;
        }
    }
    const int64_t table[2] = {m.Sp + m.S, m.Dh};
    d->rope = empo_tensor_new(2, table, EMPO_F32);
    d->order = malloc(sizeof(int64_t) * (size_t)(max_batch + 1));
    d->start = malloc(sizeof(int64_t) * (size_t)(m.slots + 2));
    d->lens = malloc(sizeof(int64_t) * (size_t)max_batch);
    const size_t claim_bytes = sizeof(uint64_t) * (size_t)empo_team_words(m.threads);
    d->claims = aligned_alloc(64, claim_bytes);   /* whole 64-byte lines */
    if (d->claims) memset(d->claims, 0, claim_bytes);
    if (!d->layer || !d->held || !d->scratch || !d->rope || !d->order || !d->start || !d->lens || !d->claims ||
        !index_ok) {
        empo_decoder_free(d);
        return empo_fail(EMPO_E_NOMEM, "decoder_new: out of memory for %lld rows' scratch", (long long)max_batch);
    }
    empo_decode_rope_table(empo_tensor_data(d->rope), &m);
    empo_tensor *top[3] = {s->embed, s->norm, s->head};
    for (int i = 0; i < 3; i++) empo_tensor_retain(d->held[d->nheld++] = top[i]);
    for (int64_t l = 0; l < m.L; l++) {
        const empo_decoder_layer_spec *y = &s->layer[l];
        empo_tensor *all[PLAIN] = {y->input_norm, y->post_norm, y->q, y->q_bias, y->k, y->k_bias, y->v,
                                     y->v_bias, y->o, y->o_bias, y->gate, y->up, y->down, y->prompt_k,
                                     y->prompt_v, y->own_k, y->own_v};
        for (int i = 0; i < PLAIN; i++)
            if (all[i]) empo_tensor_retain(d->held[d->nheld++] = all[i]);
        empo_decode_lora lora[EMPO_LORA_SLOTS] = {{0}};
        for (int i = 0; i < EMPO_LORA_SLOTS; i++) {
            if (!y->lora_a[i]) continue;
            empo_tensor_retain(d->held[d->nheld++] = y->lora_a[i]);
            empo_tensor_retain(d->held[d->nheld++] = y->lora_b[i]);
            lora[i] = (empo_decode_lora){data(y->lora_a[i]), data(y->lora_b[i]), y->lora_a[i]->shape[0]};
        }
        d->layer[l] = (empo_decode_layer){
            .input_norm = data(y->input_norm), .post_norm = data(y->post_norm), .wq = weights(y->q),
            .wk = weights(y->k), .wv = weights(y->v), .wo = weights(y->o), .bq = data(y->q_bias), .bk = data(y->k_bias),
            .bv = data(y->v_bias), .bo = data(y->o_bias), .wg = weights(y->gate), .wu = weights(y->up),
            .wd = weights(y->down), .input_eps = (float)y->input_eps, .post_eps = (float)y->post_eps,
            .pk = empo_tensor_data(y->prompt_k), .pv = empo_tensor_data(y->prompt_v), .k = empo_tensor_data(y->own_k),
            .v = empo_tensor_data(y->own_v)};
        memcpy(d->layer[l].lora, lora, sizeof lora);
    }
    d->m.embed = weights(s->embed);
    d->m.norm = data(s->norm);
    d->m.head = weights(s->head);
    d->m.rope = empo_tensor_data(d->rope);
    d->m.layer = d->layer;
    *out = d;
    return EMPO_OK;
}

static int check_rows(const empo_decoder *d, const empo_tensor *logits, int64_t B, const int64_t *ids,
                      const int64_t *pos, const int64_t *col, const int64_t *prow, const int64_t *plen) {
    const empo_decode_model *m = &d->m;
    if (B < 0 || B > d->max_batch)
        return empo_fail(EMPO_E_ARG, "decoder_step: %lld rows, the decoder was made for at most %lld",
                         (long long)B, (long long)d->max_batch);
    EMPO_TRY(empo_check_input("decoder_step", "logits", logits, EMPO_DT_FLOAT, "the weights", d->held[0]));
    if (logits->ndim != 2 || logits->shape[0] < B || logits->shape[1] != m->V || !empo_tensor_is_contiguous(logits))
        return empo_fail(EMPO_E_SHAPE, "decoder_step: logits %s, expected contiguous [>= %lld, %lld]",
                         empo_desc(logits), (long long)B, (long long)m->V);
    if (B > 0 && (!ids || !pos || !col || !prow || !plen))
        return empo_fail(EMPO_E_ARG, "decoder_step: NULL row array");
    for (int64_t b = 0; b < B; b++) {
        if (ids[b] < 0 || ids[b] >= m->V)
            return empo_fail(EMPO_E_INDEX, "decoder_step: row %lld feeds token %lld, the vocabulary has %lld",
                             (long long)b, (long long)ids[b], (long long)m->V);
        if (col[b] < 0 || col[b] >= m->S)
            return empo_fail(EMPO_E_INDEX, "decoder_step: row %lld writes own column %lld of a cache of %lld",
                             (long long)b, (long long)col[b], (long long)m->S);
        if (pos[b] < 0 || pos[b] >= m->Sp + m->S)   /* the rope table's positions */
            return empo_fail(EMPO_E_INDEX, "decoder_step: row %lld has position %lld, the cache holds %lld",
                             (long long)b, (long long)pos[b], (long long)(m->Sp + m->S));
        if (prow[b] < 0 || prow[b] >= m->slots)
            return empo_fail(EMPO_E_INDEX, "decoder_step: row %lld reads prompt slot %lld of %lld", (long long)b,
                             (long long)prow[b], (long long)m->slots);
        if (plen[prow[b]] < 0 || plen[prow[b]] > m->Sp)
            return empo_fail(EMPO_E_INDEX, "decoder_step: prompt slot %lld has length %lld, it holds %lld",
                             (long long)prow[b], (long long)plen[prow[b]], (long long)m->Sp);
    }
    return EMPO_OK;
}

/* n host arrays (len[i] values from src[i]) laid end to end into staging,
 * then up to dev in one copy; dst[i] = where array i is on the device */
static int upload_arrays(const empo_decoder *d, int64_t *dev, int64_t *staging, int n, const int64_t *const *src,
                         const int64_t *len, const int64_t **dst) {
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(staging + at, src[i], sizeof(int64_t) * (size_t)len[i]);
        dst[i] = dev + at;
        at += len[i];
    }
    if (d->K->device->upload(dev, staging, sizeof(int64_t) * (size_t)at))
        return empo_fail(EMPO_E_DEVICE, "decoder: sending the index arrays to the %s device failed: %s", d->K->name,
                         d->K->device->last_error());
    return EMPO_OK;
}

/* On a device: the step's arrays (and lens = col + 1) go up; b points at them there. */
static int upload_step(empo_decoder *d, empo_decode_batch *b) {
    for (int64_t r = 0; r < b->B; r++) d->lens[r] = b->col[r] + 1;
    const int64_t B = b->B, P = d->m.slots;
    const int64_t *src[8] = {b->ids, b->pos, b->col, b->prow, d->lens, b->plen, b->order, b->start};
    const int64_t len[8] = {B, B, B, B, B, P, B + 1, P + 2};
    const int64_t *dst[8];
    EMPO_TRY(upload_arrays(d, empo_tensor_data(d->index), d->staging, 8, src, len, dst));
    b->ids = dst[0], b->pos = dst[1], b->col = dst[2], b->prow = dst[3], b->lens = (int64_t *)dst[4];
    b->plen = dst[5], b->order = dst[6], b->start = dst[7];
    return EMPO_OK;
}

static void free_graphs(empo_decoder *d) {
    for (int64_t B = 0; d->graphs && B <= d->max_batch; B++) d->K->device->graph_free(d->graphs[B]);
    free(d->graphs);
    free(d->seen);
    d->graphs = NULL, d->seen = NULL;
}

/* A step through its graph: replayed when recorded, recorded the second
 * time this B comes (every pointer it bakes in is fixed: the decoder's
 * weights, caches, scratch and index arrays at B's offsets, and the logits
 * buffer, whose change starts the recording over), else run plainly. A capture the device
 * refuses turns graphs off for this decoder, said once. */
static int graph_step(empo_decoder *d, empo_tensor *logits, const empo_decode_batch *b) {
    const empo_device_api *dev = d->K->device;
    if (d->graph_logits != empo_tensor_data(logits)) {   /* the graphs write the old buffer: record them again */
        for (int64_t B = 0; B <= d->max_batch; B++) {
            dev->graph_free(d->graphs[B]);
            d->graphs[B] = NULL;
            d->seen[B] = 0;
        }
        d->graph_logits = empo_tensor_data(logits);
    }
    void **g = &d->graphs[b->B];
    if (!*g && d->seen[b->B]++ && dev->capture_begin() == 0) {
        d->K->decode_step(empo_tensor_data(logits), empo_tensor_data(d->scratch), &d->m, b);
        if (dev->capture_end(g) != 0) {
            static int said;
            if (!said++) fprintf(stderr, "empo: decoder: CUDA graphs off: the capture failed: %s\n", dev->last_error());
            free_graphs(d);
        } else {
            d->graphs_recorded++;
        }
    }
    if (d->graphs && *g) {
        if (dev->graph_launch(*g) != 0)
            return empo_fail(EMPO_E_DEVICE, "decoder_step: the %s device refused the step's graph: %s", d->K->name,
                             dev->last_error());
        d->graph_replays++;
        return EMPO_OK;
    }
    d->K->decode_step(empo_tensor_data(logits), empo_tensor_data(d->scratch), &d->m, b);
    return EMPO_OK;
}

int empo_decoder_step(empo_decoder *d, empo_tensor *logits, int64_t B, const int64_t *ids, const int64_t *pos,
                      const int64_t *col, const int64_t *prow, const int64_t *plen) {
    if (!d) return empo_fail(EMPO_E_ARG, "decoder_step: NULL decoder");
    EMPO_TRY(check_rows(d, logits, B, ids, pos, col, prow, plen));
    empo_kv_group_rows(d->order, d->start, B, d->m.slots, prow);
    empo_decode_batch b = {B, ids, pos, col, prow, plen, d->order, d->start, d->lens, d->claims};
    if (d->index) EMPO_TRY(upload_step(d, &b));
    if (d->graphs && B > 0) return graph_step(d, logits, &b);
    d->K->decode_step(empo_tensor_data(logits), empo_tensor_data(d->scratch), &d->m, &b);
    return EMPO_OK;
}

/* The prompts' sizes and slots: what a prefill would read and write. */
static int check_prompts(const empo_decoder *d, const empo_tensor *logits, int64_t n, const int64_t *ids,
                         const int64_t *len, const int64_t *slot) {
    const empo_decode_model *m = &d->m;
    if (n < 0) return empo_fail(EMPO_E_ARG, "decoder_prefill: %lld prompts", (long long)n);
    EMPO_TRY(empo_check_input("decoder_prefill", "logits", logits, EMPO_DT_FLOAT, "the weights", d->held[0]));
    if (logits->ndim != 2 || logits->shape[0] < n || logits->shape[1] != m->V || !empo_tensor_is_contiguous(logits))
        return empo_fail(EMPO_E_SHAPE, "decoder_prefill: logits %s, expected contiguous [>= %lld, %lld]",
                         empo_desc(logits), (long long)n, (long long)m->V);
    if (n > 0 && (!ids || !len || !slot)) return empo_fail(EMPO_E_ARG, "decoder_prefill: NULL prompt array");
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (len[i] < 1 || len[i] > m->Sp)
            return empo_fail(EMPO_E_ARG, "decoder_prefill: prompt %lld has %lld tokens, a slot holds 1 to %lld",
                             (long long)i, (long long)len[i], (long long)m->Sp);
        if (slot[i] < 0 || slot[i] >= m->slots)
            return empo_fail(EMPO_E_INDEX, "decoder_prefill: prompt %lld goes to slot %lld of %lld", (long long)i,
                             (long long)slot[i], (long long)m->slots);
        for (int64_t j = 0; j < i; j++)
            if (slot[j] == slot[i])
                return empo_fail(EMPO_E_ARG, "decoder_prefill: prompts %lld and %lld both go to slot %lld",
                                 (long long)j, (long long)i, (long long)slot[i]);
        for (int64_t t = 0; t < len[i]; t++, at++)
            if (ids[at] < 0 || ids[at] >= m->V)
                return empo_fail(EMPO_E_INDEX,
                                 "decoder_prefill: prompt %lld token %lld is %lld, the vocabulary has %lld",
                                 (long long)i, (long long)t, (long long)ids[at], (long long)m->V);
    }
    return EMPO_OK;
}

/* On a device: a prefill's ids, start, slot and each token's prompt go up
 * into *index (the caller releases it after the prefill); b points at them there. */
static int upload_prefill(empo_decoder *d, empo_prefill_batch *b, empo_tensor **index) {
    const int64_t n = b->n, R = b->rows, count = 2 * R + 2 * n + 1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = b->start[i]; r < b->start[i + 1]; r++) b->prompt_of[r] = i;
    int64_t *staging = malloc(sizeof(int64_t) * (size_t)count);
    *index = empo_tensor_new_on(1, &count, EMPO_I64, empo_tensor_device(d->held[0]));
    if (!staging || !*index) {
        free(staging);
        return empo_fail(EMPO_E_NOMEM, "decoder_prefill: out of memory for %lld tokens' index arrays", (long long)R);
    }
    const int64_t *src[4] = {b->ids, b->start, b->slot, b->prompt_of}, len[4] = {R, n + 1, n, R};
    const int64_t *dst[4];
    int st = upload_arrays(d, empo_tensor_data(*index), staging, 4, src, len, dst);
    free(staging);
    b->ids = dst[0], b->start = dst[1], b->slot = dst[2], b->prompt_of = (int64_t *)dst[3];
    b->task_start = NULL;   /* (the CPU's; a device prefill has none) */
    return st;
}

int empo_decoder_prefill(empo_decoder *d, empo_tensor *logits, int64_t n, const int64_t *ids, const int64_t *len,
                         const int64_t *slot) {
    if (!d) return empo_fail(EMPO_E_ARG, "decoder_prefill: NULL decoder");
    EMPO_TRY(check_prompts(d, logits, n, ids, len, slot));
    if (n == 0) return EMPO_OK;
    int64_t R = 0;
    for (int64_t i = 0; i < n; i++) R += len[i];
    if (R > MAX_ROWS)
        return empo_fail(EMPO_E_ARG, "decoder_prefill: %lld tokens in one prefill, at most %lld", (long long)R,
                         (long long)MAX_ROWS);
    const int device = empo_tensor_device(logits);
    int64_t floats = d->K->decode_scratch_floats(&d->m, R);
    empo_tensor *scratch = empo_tensor_new_on(1, &floats, EMPO_F32, device);
    int64_t *index = malloc(sizeof(int64_t) * (size_t)(3 * (n + 1) + R));   /* start, task_start x2, prompt_of */
    if (!scratch || !index) {
        empo_tensor_release(scratch);
        free(index);
        return empo_fail(EMPO_E_NOMEM, "decoder_prefill: out of memory for %lld tokens' scratch", (long long)R);
    }
    int64_t *start = index, *task_start = index + n + 1, *prompt_of = task_start + 2 * (n + 1);
    start[0] = 0;
    for (int64_t i = 0; i < n; i++) start[i + 1] = start[i] + len[i];
    empo_prefill_batch b = {n, ids, start, slot, task_start, prompt_of, d->claims, R};
    empo_tensor *uploaded = NULL;   /* the arrays' device copy (none on the CPU) */
    int st = device == EMPO_CPU ? EMPO_OK : upload_prefill(d, &b, &uploaded);
    if (st == EMPO_OK) d->K->decode_prefill(empo_tensor_data(logits), empo_tensor_data(scratch), &d->m, &b);
    empo_tensor_release(uploaded);
    empo_tensor_release(scratch);
    free(index);
    return st;
}

int64_t empo_decoder_scratch_bytes(const empo_decoder *d) {
    return d ? (int64_t)sizeof(float) * (d->scratch_floats + (d->m.Sp + d->m.S) * d->m.Dh) : 0;
}

void empo_decoder_graph_counts(const empo_decoder *d, int64_t *recorded, int64_t *replayed) {
    if (recorded) *recorded = d ? d->graphs_recorded : 0;
    if (replayed) *replayed = d ? d->graph_replays : 0;
}

void empo_decoder_free(empo_decoder *d) {
    if (!d) return;
    free_graphs(d);
    empo_tensor_release(d->index);
    free(d->staging);
    for (int64_t i = 0; i < d->nheld; i++) empo_tensor_release(d->held[i]);
    free(d->held);
    free(d->layer);
    empo_tensor_release(d->scratch);
    empo_tensor_release(d->rope);
    free(d->order);
    free(d->start);
    free(d->lens);
    free(d->claims);
    free(d);
}
