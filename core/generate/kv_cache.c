/* kv_cache.c — the KV cache of a sampling batch whose rows each hold one
 * sequence at its own length (core/include/empo/sample.h): appending one position
 * per row, copying and moving rows, and the attention of each row's new
 * token over its prompt (a prefix shared by its samples) and its own
 * positions (the table where the cache lives: kernels/cpu, kernels/ref or
 * kernels/cuda; a device cache is written by strided copies). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd_internal.h"
#include "generate_internal.h"

/* c: a contiguous f32 cache on first's device (any device when first is NULL) */
static int check_cache(const char *op, const char *arg, const empo_tensor *c, const char *first_arg,
                       const empo_tensor *first) {
    EMPO_TRY(empo_check_input(op, arg, c, EMPO_DT_FLOAT, first_arg, first));
    if (c->ndim != 4 || !empo_tensor_is_contiguous(c))
        return empo_fail(EMPO_E_SHAPE, "%s: %s %s must be a contiguous [B, H, S, Dh] cache", op, arg, empo_desc(c));
    return EMPO_OK;
}

/* On a device: one strided copy per run of rows writing at the same
 * position (the rows of one admission stay in step). */
static void kv_write_device(empo_tensor *cache, empo_tensor *x, const int64_t *pos) {
    const int64_t B = x->shape[0], H = x->shape[1], T = x->shape[2], D = x->shape[3], S = cache->shape[2];
    const empo_kernel_table *K = empo_kernels_of(cache);
    const int64_t *st = x->strides;
    const int esize = (int)sizeof(float);
    for (int64_t b0 = 0, b1; b0 < B; b0 = b1) {
        for (b1 = b0 + 1; b1 < B && pos[b1] == pos[b0]; b1++) {}
        const empo_strided_copy c = {4, esize, {b1 - b0, H, T, D}, {H * S * D, S * D, D, 1},
                                     {st[0], st[1], st[2], st[3]}};
        K->copy_strided((float *)empo_tensor_data(cache) + (b0 * H * S + pos[b0]) * D,
                        (const float *)empo_tensor_data(x) + b0 * st[0], &c);
    }
}

int empo_kv_write(empo_tensor *cache, empo_tensor *x, const int64_t *pos) {
    EMPO_TRY(check_cache("kv_write", "cache", cache, NULL, NULL));
    EMPO_TRY(empo_check_input("kv_write", "x", x, EMPO_DT_FLOAT, "cache", cache));
    if (x->ndim != 4 || x->shape[0] > cache->shape[0] || x->shape[1] != cache->shape[1] ||
        x->shape[3] != cache->shape[3])
        return empo_fail(EMPO_E_SHAPE, "kv_write: x %s does not fit cache %s (expected [<= %lld, %lld, T, %lld])",
                         empo_desc(x), empo_desc(cache), (long long)cache->shape[0], (long long)cache->shape[1],
                         (long long)cache->shape[3]);
    const int64_t B = x->shape[0], H = x->shape[1], T = x->shape[2], D = x->shape[3], S = cache->shape[2];
    if (B > 0 && !pos) return empo_fail(EMPO_E_ARG, "kv_write: NULL positions");
    for (int64_t b = 0; b < B; b++)
        if (pos[b] < 0 || pos[b] + T > S)
            return empo_fail(EMPO_E_INDEX, "kv_write: row %lld writes positions %lld..%lld of a cache of %lld",
                             (long long)b, (long long)pos[b], (long long)(pos[b] + T - 1), (long long)S);
    if (empo_on_device(cache)) {
        kv_write_device(cache, x, pos);
        return EMPO_OK;
    }
    float *c = empo_tensor_data(cache);
    const float *src = (const float *)empo_tensor_data(x);
    const int64_t *st = x->strides;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                float *d = c + ((b * H + h) * S + pos[b] + t) * D;
                const float *s = src + b * st[0] + h * st[1] + t * st[2];
                if (st[3] == 1) memcpy(d, s, sizeof(float) * (size_t)D);
                else for (int64_t i = 0; i < D; i++) d[i] = s[i * st[3]];
            }
    return EMPO_OK;
}

int empo_kv_copy_rows(empo_tensor *dst, empo_tensor *src, int64_t n, const int64_t *dst_rows,
                      const int64_t *src_rows, int64_t cols) {
    EMPO_TRY(check_cache("kv_copy_rows", "dst", dst, NULL, NULL));
    EMPO_TRY(check_cache("kv_copy_rows", "src", src, "dst", dst));
    if (dst->shape[1] != src->shape[1] || dst->shape[3] != src->shape[3] || cols < 0 || cols > dst->shape[2] ||
        cols > src->shape[2])
        return empo_fail(EMPO_E_SHAPE, "kv_copy_rows: %lld positions from %s to %s: heads, head dims or lengths do not fit",
                         (long long)cols, empo_desc(src), empo_desc(dst));
    if (n > 0 && (!dst_rows || !src_rows)) return empo_fail(EMPO_E_ARG, "kv_copy_rows: NULL row list");
    for (int64_t i = 0; i < n; i++)
        if (dst_rows[i] < 0 || dst_rows[i] >= dst->shape[0] || src_rows[i] < 0 || src_rows[i] >= src->shape[0])
            return empo_fail(EMPO_E_INDEX, "kv_copy_rows: pair %lld (row %lld -> row %lld) is outside %s -> %s",
                             (long long)i, (long long)src_rows[i], (long long)dst_rows[i], empo_desc(src),
                             empo_desc(dst));
    const int64_t H = dst->shape[1], D = dst->shape[3], Sd = dst->shape[2], Ss = src->shape[2];
    float *d = empo_tensor_data(dst);
    const float *s = empo_tensor_data(src);
    const empo_kernel_table *K = empo_on_device(dst) ? empo_kernels_of(dst) : NULL;
    const empo_strided_copy row = {3, (int)sizeof(float), {H, cols, D}, {Sd * D, D, 1}, {Ss * D, D, 1}};
    for (int64_t i = 0; i < n; i++) {
        if (d == s && dst_rows[i] == src_rows[i]) continue;
        if (K) {   /* in order on the device's one stream, as the host's loop */
            K->copy_strided(d + dst_rows[i] * H * Sd * D, s + src_rows[i] * H * Ss * D, &row);
            continue;
        }
        for (int64_t h = 0; h < H; h++)
            memmove(d + (dst_rows[i] * H + h) * Sd * D, s + (src_rows[i] * H + h) * Ss * D,
                    sizeof(float) * (size_t)(cols * D));
    }
    return EMPO_OK;
}

static int check_kv_attention(empo_tensor *q, empo_tensor *pk, empo_tensor *pv, const int64_t *prow,
                              const int64_t *plen, empo_tensor *k, empo_tensor *v, const int64_t *len) {
    EMPO_TRY(empo_check_input("kv_attention", "q", q, EMPO_DT_FLOAT, NULL, NULL));
    EMPO_TRY(check_cache("kv_attention", "k", k, "q", q));
    EMPO_TRY(check_cache("kv_attention", "v", v, "q", q));
    if (memcmp(k->shape, v->shape, sizeof(int64_t) * 4) != 0)
        return empo_fail(EMPO_E_SHAPE, "kv_attention: k %s and v %s: shapes must be equal", empo_desc(k), empo_desc(v));
    if (q->ndim != 4 || q->shape[2] != 1 || q->shape[0] > k->shape[0] || q->shape[3] != k->shape[3] ||
        k->shape[1] == 0 || q->shape[1] % k->shape[1] != 0)
        return empo_fail(EMPO_E_SHAPE, "kv_attention: q %s and cache %s: expected q [<= %lld, a multiple of %lld heads, "
                         "1, %lld]", empo_desc(q), empo_desc(k), (long long)k->shape[0], (long long)k->shape[1],
                         (long long)k->shape[3]);
    empo_tensor *ins[5] = {q, k, v, pk, pv};
    if (empo_any_requires_grad(5, ins))
        return empo_fail(EMPO_E_STATE, "kv_attention: decoding only, it has no gradient (run it under no_grad)");
    const int64_t B = q->shape[0], S = k->shape[2];
    if (B > 0 && !len) return empo_fail(EMPO_E_ARG, "kv_attention: NULL lengths");
    for (int64_t b = 0; b < B; b++)
        if (len[b] < 0 || len[b] > S)
            return empo_fail(EMPO_E_INDEX, "kv_attention: row %lld has length %lld, the cache holds %lld positions",
                             (long long)b, (long long)len[b], (long long)S);
    if (!pk && !pv && !prow && !plen) return EMPO_OK;
    if (!pk || !pv || !prow || !plen)
        return empo_fail(EMPO_E_ARG, "kv_attention: a prefix needs pk, pv, prow and plen together");
    EMPO_TRY(check_cache("kv_attention", "pk", pk, "q", q));
    EMPO_TRY(check_cache("kv_attention", "pv", pv, "q", q));
    if (memcmp(pk->shape, pv->shape, sizeof(int64_t) * 4) != 0 || pk->shape[1] != k->shape[1] ||
        pk->shape[3] != k->shape[3])
        return empo_fail(EMPO_E_SHAPE, "kv_attention: prefix %s / %s and cache %s: heads and head dims must agree",
                         empo_desc(pk), empo_desc(pv), empo_desc(k));
    for (int64_t b = 0; b < B; b++) {
        if (prow[b] < 0 || prow[b] >= pk->shape[0])
            return empo_fail(EMPO_E_INDEX, "kv_attention: row %lld reads prefix row %lld of %s", (long long)b,
                             (long long)prow[b], empo_desc(pk));
        if (plen[prow[b]] < 0 || plen[prow[b]] > pk->shape[2])
            return empo_fail(EMPO_E_INDEX, "kv_attention: prefix row %lld has length %lld, it holds %lld positions",
                             (long long)prow[b], (long long)plen[prow[b]], (long long)pk->shape[2]);
    }
    return EMPO_OK;
}

/* The rows grouped by prefix row (counting sort: order [B + 1] and start
 * [P + 2], P groups), or one group per row without a prefix (prow NULL). */
void empo_kv_group_rows(int64_t *order, int64_t *start, int64_t B, int64_t P, const int64_t *prow) {
    memset(start, 0, sizeof(int64_t) * (size_t)(P + 2));
    for (int64_t b = 0; b < B; b++) start[(prow ? prow[b] : b) + 2]++;
    for (int64_t p = 0; p < P; p++) start[p + 2] += start[p + 1];
    for (int64_t b = 0; b < B; b++) order[start[(prow ? prow[b] : b) + 1]++] = b;
}

static int group_rows(int64_t **order, int64_t **start, int64_t B, int64_t P, const int64_t *prow) {
    *order = malloc(sizeof(int64_t) * (size_t)(B + 1));
    *start = malloc(sizeof(int64_t) * (size_t)(P + 2));
    if (!*order || !*start) return empo_fail(EMPO_E_NOMEM, "kv_attention: out of memory");
    empo_kv_group_rows(*order, *start, B, P, prow);
    return EMPO_OK;
}

/* The index arrays the kernel reads, on q's device: plen [P] (NULL without
 * a prefix), order [B + 1], start [P + 2], len [B] laid end to end in one
 * i64 tensor (NULL on the CPU, where the kernel reads the host arrays). */
static int index_arrays(empo_tensor **out, const empo_tensor *q, const int64_t *plen, const int64_t *order,
                        const int64_t *start, const int64_t *len, int64_t B, int64_t P) {
    *out = NULL;
    if (!empo_on_device(q)) return EMPO_OK;
    const int64_t n = (plen ? P : 0) + (B + 1) + (P + 2) + B;
    empo_tensor *host = empo_tensor_new(1, &n, EMPO_I64);
    if (!host) return empo_fail(EMPO_E_NOMEM, "kv_attention: out of memory");
    int64_t *h = empo_tensor_data(host);
    if (plen) memcpy(h, plen, sizeof(int64_t) * (size_t)P), h += P;
    memcpy(h, order, sizeof(int64_t) * (size_t)(B + 1)), h += B + 1;
    memcpy(h, start, sizeof(int64_t) * (size_t)(P + 2)), h += P + 2;
    memcpy(h, len, sizeof(int64_t) * (size_t)B);
    int st = empo_to_device_nograd(out, host, empo_tensor_device(q));
    empo_tensor_release(host);
    return st;
}

int empo_kv_attention(empo_tensor **out, empo_tensor *q, empo_tensor *pk, empo_tensor *pv, const int64_t *prow,
                      const int64_t *plen, empo_tensor *k, empo_tensor *v, const int64_t *len, double scale) {
    EMPO_TRY(check_kv_attention(q, pk, pv, prow, plen, k, v, len));
    const int64_t B = q->shape[0], Dh = q->shape[3];
    if (!(scale > 0.0)) scale = Dh > 0 ? 1.0 / sqrt((double)Dh) : 1.0;
    const empo_kv_shape a = {B, q->shape[1], k->shape[1], Dh, pk ? pk->shape[0] : B, pk ? pk->shape[2] : 0,
                             k->shape[2], (float)scale};
    empo_tensor *qc = NULL, *y = NULL, *work = NULL, *index = NULL;
    int64_t *order = NULL, *start = NULL;
    const empo_kernel_table *K = empo_kernels_of(q);
    const int64_t nwork = K->kv_attention_work(&a);
    if (!pk) plen = NULL;
    int st = group_rows(&order, &start, B, a.P, pk ? prow : NULL);
    if (st == EMPO_OK) st = index_arrays(&index, q, plen, order, start, len, B, a.P);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&qc, q);
    if (st == EMPO_OK && !(y = empo_tensor_new_like(q, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(work = empo_tensor_new_on(1, &nwork, EMPO_F32, empo_tensor_device(q)))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        const int64_t *kplen = plen, *korder = order, *kstart = start, *klen = len;
        if (index) {   /* the device's copies, laid out as index_arrays wrote them */
            const int64_t *d = empo_tensor_data(index);
            kplen = plen ? d : NULL;
            korder = d + (plen ? a.P : 0), kstart = korder + B + 1, klen = kstart + a.P + 2;
        }
        K->kv_attention(empo_tensor_data(y), empo_tensor_data(work), empo_tensor_data(qc),
                        pk ? empo_tensor_data(pk) : NULL, pv ? empo_tensor_data(pv) : NULL, kplen, korder, kstart,
                        empo_tensor_data(k), empo_tensor_data(v), klen, &a);
    }
    free(order);
    free(start);
    empo_tensor_release(index);
    empo_tensor_release(qc);
    empo_tensor_release(work);
    return empo_tensor_handover(out, y, st);
}
