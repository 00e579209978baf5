/* op_fused_attention.c — the scaled dot-product attention op (f32) with
 * grouped KV heads, causal masking aligned to a KV cache and an optional
 * key mask: validation, dispatch to kernels/cpu or kernels/ref (fused.h),
 * and its autograd node.
 *
 * Semantics beyond empo/ops.h: S >= T is required only when causal (plain
 * cross-attention may have fewer keys than queries). A query row that sees
 * no key at all (every visible key masked out) outputs zeros and passes no
 * gradient, instead of the NaN a softmax over nothing would give. The key
 * mask never gets a gradient. */
#include <math.h>
#include <string.h>
#include "op_fused.h"

static empo_attn_shape attn_shape(const empo_tensor *q, const empo_tensor *k, int causal,
                                  double scale) {
    empo_attn_shape a = {q->shape[0], q->shape[1], k->shape[1], q->shape[2], k->shape[2], q->shape[3],
                         causal != 0, (float)scale};
    return a;
}

/* Scratch for the fast kernels (the reference needs none), beside q. */
static int attention_work(empo_tensor **work, const empo_tensor *q, const empo_attn_shape *a) {
    const int64_t n = empo_kernels_of(q)->attention_work(a);
    return (*work = empo_tensor_new_on(1, &n, EMPO_F32, empo_tensor_device(q))) ? EMPO_OK : EMPO_E_NOMEM;
}

/* saved: 0 = q, 1 = k, 2 = v (contiguous), 3 = aux f32: lse [B*Hq*T], then
 * keep [B*S] when i[1]; 4 = the output; i[0] = causal; f[0] = scale */
static int attention_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *q = node->saved[0], *k = node->saved[1], *v = node->saved[2], *aux = node->saved[3];
    empo_tensor *y = node->saved[4];
    const empo_attn_shape a = attn_shape(q, k, (int)node->i[0], node->f[0]);
    const int64_t rows = a.B * a.Hq * a.T;
    int st = EMPO_OK;
    empo_tensor *dq = grad_like(q, node->inputs[0] != NULL, &st);
    empo_tensor *dk = grad_like(k, node->inputs[1] != NULL, &st);
    empo_tensor *dv = grad_like(v, node->inputs[2] != NULL, &st);
    empo_tensor *work = NULL;
    if (st == EMPO_OK) st = attention_work(&work, q, &a);
    if (st == EMPO_OK) {
        const float *lse = fdata(aux), *keep = node->i[1] ? lse + rows : NULL;
        empo_kernels_of(q)->attention_backward(fdata(dq), fdata(dk), fdata(dv), fdata(work), fdata(g), fdata(q), fdata(k),
                                           fdata(v), fdata(y), keep, lse, &a);
        gin[0] = dq;
        gin[1] = dk;
        gin[2] = dv;
    } else {
        empo_tensor_release(dq);
        empo_tensor_release(dk);
        empo_tensor_release(dv);
    }
    empo_tensor_release(work);
    return st;
}

static int attention_check_mask(const empo_tensor *k, const empo_tensor *mask) {
    EMPO_TRY(empo_check_input("attention", "key_mask", mask, EMPO_DT(EMPO_U8) | EMPO_DT_INDEX | EMPO_DT_FLOAT, "k", k));
    if (mask->ndim != 2 || mask->shape[0] != k->shape[0] || mask->shape[1] != k->shape[2])
        return empo_fail(EMPO_E_SHAPE, "attention: key_mask %s and k %s: key_mask must be [%lld x %lld] (batch x keys)",
                         empo_desc(mask), empo_desc(k), (long long)k->shape[0], (long long)k->shape[2]);
    return EMPO_OK;
}

static int attention_check(empo_tensor *q, empo_tensor *k, empo_tensor *v, int causal,
                           empo_tensor *mask) {
    EMPO_TRY(empo_check_input("attention", "q", q, EMPO_DT_FLOAT, "q", q));
    EMPO_TRY(empo_check_input("attention", "k", k, EMPO_DT_FLOAT, "q", q));
    EMPO_TRY(empo_check_input("attention", "v", v, EMPO_DT_FLOAT, "q", q));
    if (q->ndim != 4 || k->ndim != 4)
        return empo_fail(EMPO_E_SHAPE, "attention: q %s and k %s: expected 4 dims [B, H, T, Dh] and [B, Hkv, S, Dh]",
                         empo_desc(q), empo_desc(k));
    if (v->ndim != 4 || memcmp(k->shape, v->shape, 4 * sizeof(int64_t)))
        return empo_fail(EMPO_E_SHAPE, "attention: k %s and v %s: shapes must be equal", empo_desc(k), empo_desc(v));
    if (q->shape[0] != k->shape[0])
        return empo_fail(EMPO_E_SHAPE, "attention: q %s and k %s: batch sizes differ (%lld vs %lld)", empo_desc(q),
                         empo_desc(k), (long long)q->shape[0], (long long)k->shape[0]);
    if (q->shape[3] != k->shape[3])
        return empo_fail(EMPO_E_SHAPE, "attention: q %s and k %s: head dims differ (%lld vs %lld)", empo_desc(q),
                         empo_desc(k), (long long)q->shape[3], (long long)k->shape[3]);
    if (k->shape[1] == 0 || q->shape[1] % k->shape[1] != 0)
        return empo_fail(EMPO_E_SHAPE, "attention: q %s and k %s: heads %lld not a multiple of kv heads %lld",
                         empo_desc(q), empo_desc(k), (long long)q->shape[1], (long long)k->shape[1]);
    if (causal && k->shape[2] < q->shape[2])
        return empo_fail(EMPO_E_SHAPE, "attention: q %s and k %s: causal attention needs at least as many keys as "
                         "queries (S %lld < T %lld)", empo_desc(q), empo_desc(k), (long long)k->shape[2],
                         (long long)q->shape[2]);
    return mask ? attention_check_mask(k, mask) : EMPO_OK;
}

/* lse [rows] followed, with a mask, by keep [B*S] as 0/1-valued f32 (any
 * nonzero mask value keeps the key), on q's device: assembled on the host
 * (the lse part is the kernel's to write). */
static int attention_aux(empo_tensor **aux, const empo_tensor *q, empo_tensor *mask, int64_t rows) {
    const int64_t n = rows + (mask ? empo_tensor_numel(mask) : 0);
    if (!mask) return (*aux = empo_tensor_new_on(1, &n, EMPO_F32, empo_tensor_device(q))) ? EMPO_OK : EMPO_E_NOMEM;
    empo_tensor *host = NULL, *m = NULL, *a = empo_tensor_new(1, &n, EMPO_F32);
    if (!a) return EMPO_E_NOMEM;
    int st = index_on_host(&host, mask);
    if (st == EMPO_OK) st = empo_copy_as(&m, host, EMPO_F32);
    if (st == EMPO_OK) {
        const float *src = fdata(m);
        float *keep = fdata(a) + rows;
        for (int64_t i = 0; i < rows; i++) fdata(a)[i] = 0.0f;
        for (int64_t i = 0; i < n - rows; i++) keep[i] = src[i] != 0.0f ? 1.0f : 0.0f;
        st = to_device_of(&a, q);
    }
    empo_tensor_release(host);
    empo_tensor_release(m);
    return empo_tensor_handover(aux, a, st);
}

int empo_attention(empo_tensor **out, empo_tensor *q, empo_tensor *k, empo_tensor *v,
                   int causal, double scale, empo_tensor *key_mask) {
    EMPO_TRY(attention_check(q, k, v, causal, key_mask));
    const int64_t Dh = q->shape[3];
    if (!(scale > 0.0)) scale = Dh > 0 ? 1.0 / sqrt((double)Dh) : 1.0;
    const empo_attn_shape a = attn_shape(q, k, causal, scale);
    const int64_t rows = a.B * a.Hq * a.T;
    empo_tensor *qc = NULL, *kc = NULL, *vc = NULL, *aux = NULL, *y = NULL, *work = NULL;
    int st = empo_contiguous_nograd(&qc, q);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&kc, k);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&vc, v);
    if (st == EMPO_OK) st = attention_aux(&aux, q, key_mask, rows);
    if (st == EMPO_OK && !(y = empo_tensor_new_like(q, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) st = attention_work(&work, q, &a);
    if (st == EMPO_OK) {
        float *lse = fdata(aux), *keep = key_mask ? lse + rows : NULL;
        empo_kernels_of(q)->attention_forward(fdata(y), lse, fdata(work), fdata(qc), fdata(kc), fdata(vc), keep,
                                          &a);
        empo_tensor *ins[3] = {q, k, v};
        empo_node *node = empo_node_record("attention", attention_backward, y, 3, ins, &st);
        if (node) {
            empo_node_save(node, 0, qc);
            empo_node_save(node, 1, kc);
            empo_node_save(node, 2, vc);
            empo_node_save(node, 3, aux);
            st = empo_node_save_output(node, 4, y);
            node->i[0] = a.causal;
            node->i[1] = key_mask != NULL;
            node->f[0] = scale;
        }
    }
    empo_tensor_release(qc);
    empo_tensor_release(kc);
    empo_tensor_release(vc);
    empo_tensor_release(aux);
    empo_tensor_release(work);
    return empo_tensor_handover(out, y, st);
}
