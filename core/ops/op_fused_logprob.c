/* op_fused_logprob.c — the token log-prob + entropy ops (f32 logits, i32/i64
 * ids), from logits (empo_logprob_entropy) or from final hidden states
 * through the LM head in row chunks (empo_head_logprob: never [N, V] in
 * memory): validation (ids in range, finite log-sum-exp), dispatch to the
 * kernel table (fused.h), and their autograd nodes.
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
 * the host) to lie in [0, V); op names the op in the message. */
static int logprob_ids(empo_tensor **out, const char *op, empo_tensor *ids, const char *what, empo_tensor *logits,
                       int64_t V) {
    empo_tensor *host = NULL, *t = empo_tensor_new(ids->ndim, ids->shape, EMPO_I64);
    if (!t) return EMPO_E_NOMEM;
    int st = index_on_host(&host, ids);
    int64_t *p = empo_tensor_data(t);
    for (int64_t i = 0, n = empo_tensor_numel(ids); st == EMPO_OK && i < n; i++) {
        p[i] = empo_index_at(host, i);
        if (p[i] < 0 || p[i] >= V)
            st = empo_fail(EMPO_E_INDEX, "%s: ids %s: element %lld is %lld, out of range [0, %lld) "
                           "for %s %s", op, empo_desc(ids), (long long)i, (long long)p[i], (long long)V,
                           what, empo_desc(logits));
    }
    empo_tensor_release(host);
    if (st == EMPO_OK) st = to_device_of(&t, logits);
    return empo_tensor_handover(out, t, st);
}

/* A row whose log-sum-exp is not finite has no distribution to score. */
static int logprob_check_finite(const char *op, const empo_tensor *lse, const char *what, const empo_tensor *logits) {
    empo_tensor *host = NULL;
    int st = empo_to_host_nograd(&host, lse);
    const float *l = st == EMPO_OK ? empo_tensor_data(host) : NULL;
    for (int64_t n = 0, N = empo_tensor_numel(lse); st == EMPO_OK && n < N; n++)
        if (!isfinite(l[n]))
            st = empo_fail(EMPO_E_NUMERIC, "%s: %s %s: row %lld has no finite log-sum-exp "
                           "(a NaN or +inf logit, or every logit -inf)", op, what, empo_desc(logits), (long long)n);
    empo_tensor_release(host);
    return st;
}

/* The outputs asked for go to the caller when st is EMPO_OK; the rest
 * (all on failure) are released. Returns st. */
static int hand_over(empo_tensor **logp, empo_tensor *lp, empo_tensor **entropy, empo_tensor *en, int st) {
    if (st != EMPO_OK || !logp) empo_tensor_release(lp);
    if (st != EMPO_OK || !entropy) empo_tensor_release(en);
    if (st != EMPO_OK) return st;
    if (logp) *logp = lp;
    if (entropy) *entropy = en;
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
    int st = logprob_ids(&id64, "logprob_entropy", ids, "logits", logits, V);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&lc, logits);
    const int device = empo_tensor_device(logits);
    if (st == EMPO_OK && !(lp = empo_tensor_new_on(ids->ndim, ids->shape, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(en = empo_tensor_new_on(ids->ndim, ids->shape, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(lse = empo_tensor_new_on(1, &N, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        empo_kernels_of(logits)->logprob_entropy_forward(fdata(lp), fdata(en), fdata(lse), fdata(lc),
                                                (const int64_t *)empo_tensor_data(id64), N, V);
        st = logprob_check_finite("logprob_entropy", lse, "logits", logits);
    }
    if (st == EMPO_OK && logp) st = logprob_record(lp, 0, logits, lc, id64, lse);
    if (st == EMPO_OK && entropy) st = logprob_record(en, 1, logits, lc, id64, lse);
    empo_tensor_release(lc);
    empo_tensor_release(id64);
    empo_tensor_release(lse);
    return hand_over(logp, lp, entropy, en, st);
}

/* ---- the LM head fused with the log-prob and entropy ---- */

/* Rows of logits a chunk holds by default: about 32 MB of them (so a
 * 151,936-token vocabulary goes 55 rows at a time), at least one. */
static int64_t head_chunk(int64_t chunk, int64_t N, int64_t V) {
    if (chunk <= 0) chunk = ((int64_t)32 << 20) / (4 * (V > 0 ? V : 1));
    if (chunk > N) chunk = N;
    return chunk > 0 ? chunk : 1;
}

/* saved: 0 = h [N, D] (contiguous), 1 = weight (contiguous), 2 = ids i64,
 * 3 = lse, 4 = entropy (entropy node only); f[0] = scale, i[0] = V (the
 * rows scored), i[1] = chunk; which = 0 for logp, 1 for entropy */
static int head_logprob_backward(empo_node *node, empo_tensor *g, empo_tensor **gin, int which) {
    empo_tensor *h = node->saved[0], *w = node->saved[1];
    const int64_t D = w->shape[1], N = empo_tensor_numel(node->saved[3]), V = node->i[0], chunk = node->i[1];
    int st = EMPO_OK;
    empo_tensor *dh = grad_like(h, node->inputs[0] != NULL, &st), *dw = grad_like(w, node->inputs[1] != NULL, &st);
    const int64_t wshape = chunk * V;
    empo_tensor *work = st == EMPO_OK ? empo_tensor_new_on(1, &wshape, EMPO_F32, empo_tensor_device(h)) : NULL;
    if (st == EMPO_OK && !work) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && dw) {
        if (empo_tensor_device(dw) == EMPO_CPU) memset(fdata(dw), 0, sizeof(float) * (size_t)empo_tensor_numel(dw));
        else st = empo_device_zero(dw);
    }
    if (st == EMPO_OK)
        empo_kernels_of(h)->head_logprob_backward(fdata(dh), fdata(dw), which == 0 ? fdata(g) : NULL,
                                                  which == 1 ? fdata(g) : NULL, fdata(h), fdata(w),
                                                  (const int64_t *)empo_tensor_data(node->saved[2]),
                                                  fdata(node->saved[3]), fdata(node->saved[4]), N, D, V,
                                                  (float)node->f[0], chunk, fdata(work));
    empo_tensor_release(work);
    if (st != EMPO_OK) {
        empo_tensor_release(dh), empo_tensor_release(dw);
        return st;
    }
    gin[0] = dh, gin[1] = dw;
    return EMPO_OK;
}

static int head_logp_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    return head_logprob_backward(node, g, gin, 0);
}

static int head_entropy_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    return head_logprob_backward(node, g, gin, 1);
}

static int head_check(empo_tensor **logp, empo_tensor **entropy, empo_tensor *h, empo_tensor *weight,
                      empo_tensor *ids, double scale, int64_t vocab) {
    if (!logp && !entropy)
        return empo_fail(EMPO_E_ARG, "head_logprob: both outputs are NULL (ask for logp, entropy or both)");
    EMPO_TRY(empo_check_input("head_logprob", "h", h, EMPO_DT(EMPO_F32), "h", h));
    EMPO_TRY(empo_check_input("head_logprob", "weight", weight, EMPO_DT(EMPO_F32), "h", h));
    EMPO_TRY(empo_check_input("head_logprob", "ids", ids, EMPO_DT_INDEX, "h", h));
    if (h->ndim < 1 || weight->ndim != 2 || weight->shape[0] < 1 || weight->shape[1] != h->shape[h->ndim - 1])
        return empo_fail(EMPO_E_SHAPE, "head_logprob: h %s and weight %s: expected h [..., D] and weight [V, D]",
                         empo_desc(h), empo_desc(weight));
    if (ids->ndim != h->ndim - 1 || memcmp(ids->shape, h->shape, sizeof(int64_t) * (size_t)ids->ndim))
        return empo_fail(EMPO_E_SHAPE, "head_logprob: h %s and ids %s: ids must have the shape of h without its "
                         "last dim", empo_desc(h), empo_desc(ids));
    if (vocab < 0 || vocab > weight->shape[0])
        return empo_fail(EMPO_E_ARG, "head_logprob: vocab %lld must be in [1, %lld] (the rows of weight %s), or 0 "
                         "for all", (long long)vocab, (long long)weight->shape[0], empo_desc(weight));
    if (!(scale > 0.0) || !isfinite(scale))
        return empo_fail(EMPO_E_ARG, "head_logprob: scale %g must be finite and > 0 (1 / temperature)", scale);
    return EMPO_OK;
}

static int head_record(empo_tensor *y, int which, empo_tensor *h, empo_tensor *weight, empo_tensor *saved[4],
                       double scale, int64_t V, int64_t chunk) {
    int st;
    empo_tensor *ins[2] = {h, weight};
    empo_node *node = which == 0 ? empo_node_record("head_logprob:logp", head_logp_backward, y, 2, ins, &st)
                                 : empo_node_record("head_logprob:entropy", head_entropy_backward, y, 2, ins, &st);
    if (!node) return st;
    for (int k = 0; k < 4; k++) empo_node_save(node, k, saved[k]);
    node->f[0] = scale, node->i[0] = V, node->i[1] = chunk;
    return which == 1 ? empo_node_save_output(node, 4, y) : EMPO_OK;
}

int empo_head_logprob(empo_tensor **logp, empo_tensor **entropy, empo_tensor *h, empo_tensor *weight,
                      empo_tensor *ids, double scale, int64_t vocab, int64_t chunk) {
    EMPO_TRY(head_check(logp, entropy, h, weight, ids, scale, vocab));
    const int64_t D = weight->shape[1], V = vocab > 0 ? vocab : weight->shape[0], N = empo_tensor_numel(ids);
    const int64_t rows = head_chunk(chunk, N, V), wshape = rows * V;
    const int device = empo_tensor_device(h);
    empo_tensor *hc = NULL, *wc = NULL, *id64 = NULL, *lp = NULL, *en = NULL, *lse = NULL, *work = NULL;
    int st = logprob_ids(&id64, "head_logprob", ids, "the head's rows: weight", weight, V);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&hc, h);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&wc, weight);
    if (st == EMPO_OK && !(lp = empo_tensor_new_on(ids->ndim, ids->shape, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(en = empo_tensor_new_on(ids->ndim, ids->shape, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(lse = empo_tensor_new_on(1, &N, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && N > 0 && !(work = empo_tensor_new_on(1, &wshape, EMPO_F32, device))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && N > 0) {
        empo_kernels_of(h)->head_logprob_forward(fdata(lp), fdata(en), fdata(lse), fdata(hc), fdata(wc),
                                                 (const int64_t *)empo_tensor_data(id64), N, D, V, (float)scale, rows,
                                                 fdata(work));
        st = logprob_check_finite("head_logprob", lse, "the logits of h", h);
    }
    empo_tensor_release(work);
    empo_tensor *saved[4] = {hc, wc, id64, lse};
    if (st == EMPO_OK && logp) st = head_record(lp, 0, h, weight, saved, scale, V, rows);
    if (st == EMPO_OK && entropy) st = head_record(en, 1, h, weight, saved, scale, V, rows);
    for (int k = 0; k < 4; k++) empo_tensor_release(saved[k]);
    return hand_over(logp, lp, entropy, en, st);
}
