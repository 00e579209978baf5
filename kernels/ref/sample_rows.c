/* sample_rows.c — the CPU tables' batch of sampled rows and their
 * per-token statistics (kernels/sample_row.h): rows in parallel, each row
 * through the table's own sample_row, or two passes in double for the
 * statistics. The CUDA table has its own (kernels/cuda/sample.cu). */
#include <math.h>
#include <stdlib.h>
#include "kernels/parallel.h"
#include "kernels/sample_row.h"

typedef struct {
    empo_sample_row_fn *row;
    int64_t *ids;
    float *logp, *ref;
    const float *logits;
    int64_t V, stride;
    const empo_sampling *s;
    const double *u;
    int nomem;   /* set (racily, only ever to 1) when a range's scratch fails */
} rows_job;

static void rows_range(void *ctx, int64_t lo, int64_t hi) {
    rows_job *j = ctx;
    void *scratch = malloc((size_t)empo_sample_scratch_bytes(j->V));
    if (!scratch) { j->nomem = 1; return; }
    for (int64_t n = lo; n < hi; n++) {
        float lp, rlp;
        j->row(&j->ids[n], &lp, &rlp, j->logits + n * j->stride, j->V, j->s, j->u ? j->u[n] : 0.0, scratch);
        if (j->logp) j->logp[n] = lp;
        j->ref[n] = rlp;
    }
    free(scratch);
}

int empo_sample_rows_cpu(empo_sample_row_fn *row, int64_t *ids, float *logp, float *ref_logp, const float *logits,
                         int64_t N, int64_t V, int64_t stride, const empo_sampling *s, const double *u,
                         int64_t *bad) {
    *bad = -1;
    float *ref = ref_logp ? ref_logp : malloc(sizeof(float) * (size_t)(N ? N : 1));
    if (!ref) return -1;
    rows_job j = {row, ids, logp, ref, logits, V, stride, s, u, 0};
    empo_parallel_for(N, N * V * 8, rows_range, &j);
    for (int64_t n = 0; n < N && !j.nomem; n++)
        if (isnan(ref[n])) { *bad = n; break; }
    if (!ref_logp) free(ref);
    return j.nomem ? -1 : 0;
}

int empo_ref_sample_rows(int64_t *ids, float *logp, float *ref_logp, const float *logits, int64_t N, int64_t V,
                         int64_t stride, const empo_sampling *s, const double *u, int64_t *bad) {
    return empo_sample_rows_cpu(empo_ref_sample_row, ids, logp, ref_logp, logits, N, V, stride, s, u, bad);
}

/* ---- per-token statistics ---- */

typedef struct {
    float *entropy, *certainty;
    const float *logits;
    int64_t V, stride;
    double inv_t;
    char *bad;   /* [N]: the row's log Z is not finite */
} stats_job;

/* With z = x * inv_t and log Z = logsumexp(z): entropy = log Z - sum p z,
 * certainty = log Z - mean z - log V. */
static void stats_range(void *ctx, int64_t lo, int64_t hi) {
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
        j->bad[n] = !isfinite(log_z);
        if (j->entropy) j->entropy[n] = (float)(log_z - ez_sum / e_sum);
        if (j->certainty) j->certainty[n] = (float)(log_z - z_sum / (double)j->V - log((double)j->V));
    }
}

int64_t empo_ref_sample_stats(float *entropy, float *certainty, const float *logits, int64_t N, int64_t V,
                              int64_t stride, double inv_t) {
    char *bad = calloc((size_t)(N ? N : 1), 1);
    if (!bad) return -2;
    stats_job j = {entropy, certainty, logits, V, stride, inv_t, bad};
    empo_parallel_for(N, N * V * 8, stats_range, &j);
    int64_t first = -1;
    for (int64_t n = 0; n < N && first < 0; n++)
        if (bad[n]) first = n;
    free(bad);
    return first;
}
