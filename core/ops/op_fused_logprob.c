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

/* saved: 0 = logits (contiguous), 1 = ids i64, 2 = lse [N], 3 = entropy
 * (entropy node only); which = 0 for logp, 1 for entropy */
static int logprob_entropy_backward(empo_node *node, empo_tensor *g, empo_tensor **gin, int which) {
    empo_tensor *logits = node->saved[0], *ids = node->saved[1], *lse = node->saved[2];
    const int64_t V = logits->shape[logits->ndim - 1], N = empo_tensor_numel(lse);
    empo_tensor *dl = empo_tensor_new_like(logits, EMPO_F32);
    if (!dl) return EMPO_E_NOMEM;
    empo_kernels_of(logits)->logprob_entropy_backward(fdata(dl), which == 0 ? fdata(g) : NULL, which == 1 ? fdata(g) : NULL,
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
    EMPO_TRY(empo_check_input("logprob_entropy", "logits", logits, EMPO_DT_FLOAT, "logits", logits));
    EMPO_TRY(empo_check_input("logprob_entropy", "ids", ids, EMPO_DT_INDEX, "logits", logits));
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] == 0)
        return empo_fail(EMPO_E_SHAPE, "logprob_entropy: logits %s: expected [N, V] with V > 0", empo_desc(logits));
    if (ids->ndim != logits->ndim - 1 || memcmp(ids->shape, logits->shape, sizeof(int64_t) * (size_t)ids->ndim))
        return empo_fail(EMPO_E_SHAPE, "logprob_entropy: logits %s and ids %s: ids must have the shape of logits "
                         "without its last dim", empo_desc(logits), empo_desc(ids));
    return EMPO_OK;
}

/* ids as a contiguous i64 copy on the logits' device, each checked (on
 * the host) to lie in [0, V). */
static int logprob_ids(empo_tensor **out, empo_tensor *ids, empo_tensor *logits, int64_t V) {
    empo_tensor *host = NULL, *t = empo_tensor_new(ids->ndim, ids->shape, EMPO_I64);
    if (!t) return EMPO_E_NOMEM;
    int st = index_on_host(&host, ids);
    int64_t *p = empo_tensor_data(t);
    for (int64_t i = 0, n = empo_tensor_numel(ids); st == EMPO_OK && i < n; i++) {
        p[i] = empo_index_at(host, i);
        if (p[i] < 0 || p[i] >= V)
            st = empo_fail(EMPO_E_INDEX, "logprob_entropy: ids %s: element %lld is %lld, out of range [0, %lld) "
                           "for logits %s", empo_desc(ids), (long long)i, (long long)p[i], (long long)V,
                           empo_desc(logits));
    }
    empo_tensor_release(host);
    if (st == EMPO_OK) st = to_device_of(&t, logits);
    return empo_tensor_handover(out, t, st);
}

/* A row whose log-sum-exp is not finite has no distribution to score. */
static int logprob_check_finite(const empo_tensor *lse, const empo_tensor *logits) {
    empo_tensor *host = NULL;
    int st = empo_to_host_nograd(&host, lse);
    const float *l = st == EMPO_OK ? empo_tensor_data(host) : NULL;
    for (int64_t n = 0, N = empo_tensor_numel(lse); st == EMPO_OK && n < N; n++)
        if (!isfinite(l[n]))
            st = empo_fail(EMPO_E_NUMERIC, "logprob_entropy: logits %s: row %lld has no finite log-sum-exp "
                           "(a NaN or +inf logit, or every logit -inf)", empo_desc(logits), (long long)n);
    empo_tensor_release(host);
    return st;
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
    const int device = empo_tensor_device(logits);
    if (st == EMPO_OK && !(lp = empo_tensor_new_on(ids->ndim, ids->shape, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(en = empo_tensor_new_on(ids->ndim, ids->shape, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(lse = empo_tensor_new_on(1, &N, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        empo_kernels_of(logits)->logprob_entropy_forward(fdata(lp), fdata(en), fdata(lse), fdata(lc),
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
