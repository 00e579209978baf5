/* op_fused_logprob.c — the token log-prob + entropy op (f32 logits, i32/i64
 * ids): validation (ids in range, finite log-sum-exp), dispatch to
 * kernels/cpu or kernels/ref (fused.h), and its autograd nodes.
 *
 * A node has one output, so each requested output gets its own node
 * ("logprob_entropy:logp", "logprob_entropy:entropy"). Both save the same
 * logits, ids and per-row log-sum-exp (shared, not copied) and recompute
 * the softmax in backward; the engine sums their gradients into logits.
 * Logits may be [..., V] with ids [...] (the [N, V] / [N] of empo/ops.h is
 * the common case). */
#include <math.h>
#include <string.h>
#include "op_fused.h"
#include "kernels/kernels.h"

/* saved: 0 = logits (contiguous), 1 = ids i64, 2 = lse [N], 3 = entropy
 * (entropy node only); which = 0 for logp, 1 for entropy */
static int logprob_entropy_backward(empo_node *node, empo_tensor *g, empo_tensor **gin, int which) {
    empo_tensor *logits = node->saved[0], *ids = node->saved[1], *lse = node->saved[2];
    const int64_t V = logits->shape[logits->ndim - 1], N = empo_tensor_numel(lse);
    empo_tensor *dl = empo_tensor_new(logits->ndim, logits->shape, EMPO_F32);
    if (!dl) return EMPO_E_NOMEM;
    empo_kernels()->logprob_entropy_backward(fdata(dl), which == 0 ? fdata(g) : NULL, which == 1 ? fdata(g) : NULL,
                                             fdata(logits), (const int64_t *)empo_tensor_data(ids), fdata(lse),
                                             fdata(node->saved[3]), N, V);
    gin[0] = dl;
    return EMPO_OK;
}

static int logp_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    return logprob_entropy_backward(node, g, gin, 0);
}

static int entropy_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    return logprob_entropy_backward(node, g, gin, 1);
}

static int logprob_check(empo_tensor **logp, empo_tensor **entropy, empo_tensor *logits, empo_tensor *ids) {
    if (!logp && !entropy)
        return empo_fail(EMPO_E_ARG, "logprob_entropy: both outputs are NULL (ask for logp, entropy or both)");
    EMPO_TRY(empo_check_tensor("logprob_entropy", "logits", logits, EMPO_DT_FLOAT));
    EMPO_TRY(empo_check_tensor("logprob_entropy", "ids", ids, EMPO_DT_INDEX));
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] == 0)
        return empo_fail(EMPO_E_SHAPE, "logprob_entropy: logits %s: expected [N, V] with V > 0", empo_desc(logits));
    if (ids->ndim != logits->ndim - 1 || memcmp(ids->shape, logits->shape, sizeof(int64_t) * (size_t)ids->ndim))
        return empo_fail(EMPO_E_SHAPE, "logprob_entropy: logits %s and ids %s: ids must have the shape of logits "
                         "without its last dim", empo_desc(logits), empo_desc(ids));
    return EMPO_OK;
}

/* ids as a contiguous i64 copy, each checked to lie in [0, V). */
static int logprob_ids(empo_tensor **out, empo_tensor *ids, empo_tensor *logits, int64_t V) {
    empo_tensor *t = empo_tensor_new(ids->ndim, ids->shape, EMPO_I64);
    if (!t) return EMPO_E_NOMEM;
    int64_t *p = empo_tensor_data(t);
    for (int64_t i = 0, n = empo_tensor_numel(ids); i < n; i++) {
        p[i] = empo_index_at(ids, i);
        if (p[i] < 0 || p[i] >= V) {
            long long bad = (long long)p[i];   /* read before t (and p) is released */
            empo_tensor_release(t);
            return empo_fail(EMPO_E_INDEX, "logprob_entropy: ids %s: element %lld is %lld, out of range [0, %lld) "
                             "for logits %s", empo_desc(ids), (long long)i, bad, (long long)V, empo_desc(logits));
        }
    }
    *out = t;
    return EMPO_OK;
}

/* A row whose log-sum-exp is not finite has no distribution to score. */
static int logprob_check_finite(const empo_tensor *lse, const empo_tensor *logits) {
    const float *l = empo_tensor_data(lse);
    for (int64_t n = 0, N = empo_tensor_numel(lse); n < N; n++)
        if (!isfinite(l[n]))
            return empo_fail(EMPO_E_NUMERIC, "logprob_entropy: logits %s: row %lld has no finite log-sum-exp "
                             "(a NaN or +inf logit, or every logit -inf)", empo_desc(logits), (long long)n);
    return EMPO_OK;
}

/* Records the node of one output (which = 0 logp, 1 entropy). */
static int logprob_record(empo_tensor *y, int which, empo_tensor *logits, empo_tensor *lc,
                          empo_tensor *ids, empo_tensor *lse) {
    int st;
    empo_node *node = which == 0 ? empo_node_record("logprob_entropy:logp", logp_backward, y, 1, &logits, &st)
                                 : empo_node_record("logprob_entropy:entropy", entropy_backward, y, 1, &logits, &st);
    if (!node) return st;
    empo_node_save(node, 0, lc);
    empo_node_save(node, 1, ids);
    empo_node_save(node, 2, lse);
    return which == 1 ? empo_node_save_output(node, 3, y) : EMPO_OK;
}

int empo_logprob_entropy(empo_tensor **logp, empo_tensor **entropy, empo_tensor *logits,
                         empo_tensor *ids) {
    EMPO_TRY(logprob_check(logp, entropy, logits, ids));
    const int64_t V = logits->shape[logits->ndim - 1], N = empo_tensor_numel(ids);
    empo_tensor *lc = NULL, *id64 = NULL, *lp = NULL, *en = NULL, *lse = NULL;
    int st = logprob_ids(&id64, ids, logits, V);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&lc, logits);
    if (st == EMPO_OK && !(lp = empo_tensor_new(ids->ndim, ids->shape, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(en = empo_tensor_new(ids->ndim, ids->shape, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(lse = empo_tensor_new(1, &N, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        empo_kernels()->logprob_entropy_forward(fdata(lp), fdata(en), fdata(lse), fdata(lc),
                                                (const int64_t *)empo_tensor_data(id64), N, V);
        st = logprob_check_finite(lse, logits);
    }
    if (st == EMPO_OK && logp) st = logprob_record(lp, 0, logits, lc, id64, lse);
    if (st == EMPO_OK && entropy) st = logprob_record(en, 1, logits, lc, id64, lse);
    empo_tensor_release(lc);
    empo_tensor_release(id64);
    empo_tensor_release(lse);
    if (st != EMPO_OK || !logp) empo_tensor_release(lp);
    if (st != EMPO_OK || !entropy) empo_tensor_release(en);
    if (st != EMPO_OK) return st;
    if (logp) *logp = lp;
    if (entropy) *entropy = en;
    return EMPO_OK;
}
