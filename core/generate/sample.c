/* sample.c — the sampler's per-token math (core/include/empo/sample.h): checks of
 * the settings, the per-token uniforms and the sample op (validation, rows
 * in parallel, dispatch to kernels/cpu or kernels/ref). The KV-cache rows
 * are in kv_cache.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd_internal.h"
#include "kernels/parallel.h"
#include "kernels/kernels.h"

int empo_sampling_check(const empo_sampling *s) {
    if (!s) return empo_fail(EMPO_E_ARG, "sample: NULL settings");
    if (!(s->temperature >= 0.0) || isinf(s->temperature))
        return empo_fail(EMPO_E_ARG, "sample: temperature must be a finite number >= 0 (0 = greedy), got %g",
                         s->temperature);
    if (s->top_k < 0)
        return empo_fail(EMPO_E_ARG, "sample: top_k must be >= 0 (0 = off), got %lld", (long long)s->top_k);
    if (!(s->top_p > 0.0 && s->top_p <= 1.0))
        return empo_fail(EMPO_E_ARG, "sample: top_p must be in (0, 1] (1 = off), got %g", s->top_p);
    if (!(s->min_p >= 0.0 && s->min_p <= 1.0))
        return empo_fail(EMPO_E_ARG, "sample: min_p must be in [0, 1] (0 = off), got %g", s->min_p);
    if (s->vocab < 0)
        return empo_fail(EMPO_E_ARG, "sample: vocab must be >= 0 (0 = every id), got %lld", (long long)s->vocab);
    return EMPO_OK;
}

/* The ids a row of V logits may draw: the first vocab (0 = all). */
static int64_t drawable(int64_t V, int64_t vocab) { return vocab > 0 && vocab < V ? vocab : V; }

void empo_sample_uniforms(double *u, int64_t n, uint64_t seed, const uint64_t *stream,
                          const uint64_t *counter) {
    uint32_t w[4];
    for (int64_t i = 0; i < n; i++) {
        empo_philox4x32(seed, stream[i], counter[i], w);
        u[i] = (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) * 0x1p-53;
    }
}

/* ---- the op ---- */

typedef struct {
    int64_t *ids;
    float *logp, *ref_logp;
    const float *logits;
    int64_t V, stride;   /* the drawable ids of a row, and its length */
    const empo_sampling *s;
    const double *u;
    empo_sample_row_fn *row;
    int nomem;   /* set (racily, only ever to 1) when a range's scratch fails */
} sample_job;

static void sample_rows(void *ctx, int64_t lo, int64_t hi) {
    sample_job *j = ctx;
    void *scratch = malloc((size_t)empo_sample_scratch_bytes(j->V));
    if (!scratch) { j->nomem = 1; return; }
    for (int64_t n = lo; n < hi; n++) {
        float lp, rlp;
        j->row(&j->ids[n], &lp, &rlp, j->logits + n * j->stride, j->V, j->s, j->u ? j->u[n] : 0.0, scratch);
        if (j->logp) j->logp[n] = lp;
        j->ref_logp[n] = rlp;
    }
    free(scratch);
}

static int check_out(const char *arg, const empo_tensor *t, int dtype, int64_t N) {
    EMPO_TRY(empo_check_tensor("sample", arg, t, EMPO_DT(dtype)));
    if (empo_tensor_numel(t) != N || !empo_tensor_is_contiguous(t))
        return empo_fail(EMPO_E_SHAPE, "sample: %s %s must be contiguous with %lld elements (one per row of logits)",
                         arg, empo_desc(t), (long long)N);
    return EMPO_OK;
}


static empo_tensor *host_like(const empo_tensor *t) { return t ? empo_tensor_new(t->ndim, t->shape, t->dtype) : NULL; }

/* A device without a sampling kernel (its table's supports() says so):
 * the logits come down, the CPU samples, the results go back up. Said
 * once on stderr, never silently. */
static int sample_via_host(empo_tensor *ids, empo_tensor *logp, empo_tensor *ref_logp, empo_tensor *logits,
                           const empo_sampling *s, const double *u) {
    static int warned;
    if (!warned++)
        fprintf(stderr, "empo: sample: the %s table has no sampling kernel yet; sampling on the cpu (logits copied "
                "down, tokens up); said once\n", empo_kernels_device(empo_tensor_device(logits))->name);
    const empo_tensor *outs[3] = {ids, logp, ref_logp};
    for (int i = 0; i < 3; i++)
        if (outs[i]) {
            const char *arg = i == 0 ? "ids" : (i == 1 ? "logp" : "ref_logp");
            EMPO_TRY(empo_check_input("sample", arg, outs[i], EMPO_DT(outs[i]->dtype), "logits", logits));
            if (!empo_tensor_is_contiguous(outs[i]))   /* the results go up in one piece */
                return empo_fail(EMPO_E_SHAPE, "sample: %s %s must be contiguous", arg, empo_desc(outs[i]));
        }
    empo_tensor *hl = NULL, *hi = host_like(ids), *hp = host_like(logp), *hr = host_like(ref_logp);
    int st = empo_to_host_nograd(&hl, logits);
    if (st == EMPO_OK && (!hi || (logp && !hp) || (ref_logp && !hr))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) st = empo_sample(hi, hp, hr, hl, s, u);
    if (st == EMPO_OK) st = empo_upload_into(ids, hi);
    if (st == EMPO_OK && logp) st = empo_upload_into(logp, hp);
    if (st == EMPO_OK && ref_logp) st = empo_upload_into(ref_logp, hr);
    empo_tensor_release(hl), empo_tensor_release(hi), empo_tensor_release(hp), empo_tensor_release(hr);
    return st;
}

int empo_sample(empo_tensor *ids, empo_tensor *logp, empo_tensor *ref_logp, empo_tensor *logits,
                const empo_sampling *s, const double *u) {
    EMPO_TRY(empo_sampling_check(s));
    if (logits && empo_tensor_device(logits) != EMPO_CPU &&
        !empo_kernels_support(empo_kernels_device(empo_tensor_device(logits)), EMPO_SLOT(sample_row))) {
        if (!ids) return empo_fail(EMPO_E_ARG, "sample: ids is missing (NULL tensor)");
        return sample_via_host(ids, logp, ref_logp, logits, s, u);
    }
    EMPO_TRY(empo_check_tensor("sample", "logits", logits, EMPO_DT_FLOAT));
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1 || !empo_tensor_is_contiguous(logits))
        return empo_fail(EMPO_E_SHAPE, "sample: logits %s must be contiguous [..., V] with V >= 1", empo_desc(logits));
    const int64_t V = logits->shape[logits->ndim - 1], N = empo_tensor_numel(logits) / V;
    EMPO_TRY(check_out("ids", ids, EMPO_I64, N));
    if (logp) EMPO_TRY(check_out("logp", logp, EMPO_F32, N));
    if (ref_logp) EMPO_TRY(check_out("ref_logp", ref_logp, EMPO_F32, N));
    if (!u && s->temperature != 0.0 && N > 0)
        return empo_fail(EMPO_E_ARG, "sample: uniforms are needed unless temperature is 0");
    float *ref = ref_logp ? empo_tensor_data(ref_logp) : malloc(sizeof(float) * (size_t)(N ? N : 1));
    if (!ref) return empo_fail(EMPO_E_NOMEM, "sample: out of memory");
    sample_job j = {empo_tensor_data(ids), logp ? empo_tensor_data(logp) : NULL, ref, empo_tensor_data(logits),
                    drawable(V, s->vocab), V, s, u, empo_kernels()->sample_row, 0};
    empo_parallel_for(N, N * V * 8, sample_rows, &j);
    int st = j.nomem ? empo_fail(EMPO_E_NOMEM, "sample: out of memory (scratch of %lld logits)", (long long)V)
                     : EMPO_OK;
    for (int64_t n = 0; n < N && st == EMPO_OK; n++)
        if (isnan(ref[n]))
            st = empo_fail(EMPO_E_NUMERIC, "sample: row %lld of logits %s has a NaN or +inf, or no finite value",
                           (long long)n, empo_desc(logits));
    if (!ref_logp) free(ref);
    return st;
}

/* ---- per-token statistics of the distribution sampled from ---- */

typedef struct {
    float *entropy, *certainty;
    const float *logits;
    int64_t V, stride;   /* the ids that exist, and a row's length */
    double inv_t;
    int bad;   /* set (racily, only ever to 1) when a row has no finite log Z */
} stats_job;

/* With z = logits / T and log Z = logsumexp(z): entropy = log Z - sum p z,
 * self-certainty KL(uniform || p) = log Z - mean z - log V. Two passes
 * over the row, in double. */
static void stats_rows(void *ctx, int64_t lo, int64_t hi) {
    stats_job *j = ctx;
    for (int64_t n = lo; n < hi; n++) {
        const float *x = j->logits + n * j->stride;
        double m = -INFINITY;
        for (int64_t v = 0; v < j->V; v++) m = x[v] > m ? x[v] : m;
        m *= j->inv_t;
        double z_sum = 0.0, e_sum = 0.0, ez_sum = 0.0;
        for (int64_t v = 0; v < j->V; v++) {
            double z = x[v] * j->inv_t, e = exp(z - m);
            z_sum += z;
            e_sum += e;
            if (e > 0.0) ez_sum += e * z;   /* a -inf logit adds nothing (0 · -inf) */
        }
        double log_z = m + log(e_sum);
        if (!isfinite(log_z)) j->bad = 1;
        if (j->entropy) j->entropy[n] = (float)(log_z - ez_sum / e_sum);
        if (j->certainty) j->certainty[n] = (float)(log_z - z_sum / (double)j->V - log((double)j->V));
    }
}

int empo_sample_token_stats(empo_tensor *entropy, empo_tensor *self_certainty, empo_tensor *logits,
                            double temperature, int64_t vocab) {
    EMPO_TRY(empo_check_tensor("sample_token_stats", "logits", logits, EMPO_DT(EMPO_F32)));
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1 || !empo_tensor_is_contiguous(logits))
        return empo_fail(EMPO_E_SHAPE, "sample_token_stats: logits %s must be contiguous [..., V] with V >= 1",
                         empo_desc(logits));
    if (!(temperature >= 0.0) || isinf(temperature))
        return empo_fail(EMPO_E_ARG, "sample_token_stats: temperature must be a finite number >= 0, got %g",
                         temperature);
    if (vocab < 0)
        return empo_fail(EMPO_E_ARG, "sample_token_stats: vocab must be >= 0 (0 = every id), got %lld",
                         (long long)vocab);
    const int64_t stride = logits->shape[logits->ndim - 1], N = empo_tensor_numel(logits) / stride,
                  V = drawable(stride, vocab);
    if (entropy) EMPO_TRY(check_out("entropy", entropy, EMPO_F32, N));
    if (self_certainty) EMPO_TRY(check_out("self_certainty", self_certainty, EMPO_F32, N));
    /* temperature 0 (greedy) reports the model's own distribution (T = 1) */
    stats_job j = {entropy ? empo_tensor_data(entropy) : NULL,
                   self_certainty ? empo_tensor_data(self_certainty) : NULL, empo_tensor_data(logits), V, stride,
                   temperature > 0.0 ? 1.0 / temperature : 1.0, 0};
    empo_parallel_for(N, N * V * 8, stats_rows, &j);
    for (int64_t n = 0; j.bad && n < N; n++) {   /* name the first bad row */
        const float *x = j.logits + n * stride;
        int finite = 0, broken = 0;
        for (int64_t v = 0; v < V; v++) {
            finite |= isfinite(x[v]);
            broken |= isnan(x[v]) || x[v] == INFINITY;
        }
        if (broken || !finite)
            return empo_fail(EMPO_E_NUMERIC,
                             "sample_token_stats: row %lld of logits %s has a NaN or +inf, or no finite value",
                             (long long)n, empo_desc(logits));
    }
    return EMPO_OK;
}
