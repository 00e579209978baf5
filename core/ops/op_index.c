/* op_index.c — indexing ops: embedding, gather, index_select, cat, where,
 * masked_fill (see empo/ops.h), each with its backward beside it.
 *
 * They move data, so the forward works on any dtype (elements copied by
 * size); gradients flow through f32 only. Index tensors (i32/i64, any
 * strides) are read once into a checked contiguous i64 copy, which is
 * also what backward keeps, so a later change to the caller's index
 * tensor cannot corrupt a pending backward. Masks (any dtype, nonzero =
 * true) are likewise kept as u8 copies. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "autograd/autograd_internal.h"
#include "op_dispatch.h"
#include "kernels/parallel.h"

#define EMPO_DT_ANY 0x7fu   /* every dtype in empo_dtype */

/* ---- shared helpers ---- */

static int64_t prod(const int64_t *shape, int from, int to) {
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= shape[d];
    return p;
}

/* Inputs that will receive a gradient must be f32 (the backward math). */
static int check_grad_dtype(const char *op, int n, empo_tensor *const *xs) {
    if (!empo_any_requires_grad(n, xs)) return EMPO_OK;
    for (int i = 0; i < n; i++)
        if (xs[i] && xs[i]->requires_grad && xs[i]->dtype != EMPO_F32)
            return empo_fail(EMPO_E_DTYPE, "%s: input %s requires grad, but gradients flow through f32 only", op,
                             empo_desc(xs[i]));
    return EMPO_OK;
}

/* A contiguous i64 copy of idx ([numel], logical order), every value checked
 * to lie in [0, size); `what` names the range in the message. */
static int checked_index(const char *op, const empo_tensor *idx, int64_t size, const char *what,
                         empo_tensor **out) {
    int64_t n = empo_tensor_numel(idx);
    empo_tensor *host = NULL, *t = empo_tensor_new(1, &n, EMPO_I64);
    if (!t) return EMPO_E_NOMEM;
    int st = index_on_host(&host, (empo_tensor *)idx);   /* checked on the host, wherever idx lives */
    int64_t *v = empo_tensor_data(t);
    for (int64_t i = 0; st == EMPO_OK && i < n; i++) {
        v[i] = empo_index_at(host, i);
        if (v[i] < 0 || v[i] >= size)
            st = empo_fail(EMPO_E_INDEX, "%s: index %lld at position %lld of %s is out of range for %s (size %lld)",
                           op, (long long)v[i], (long long)i, empo_desc(idx), what, (long long)size);
    }
    empo_tensor_release(host);
    if (st == EMPO_OK) st = to_device_of(&t, idx);   /* back where the op runs */
    return empo_tensor_handover(out, t, st);
}

/* A u8 copy of cond with its shape: 1 where cond is nonzero (NaN counts as
 * nonzero, as in C and PyTorch). */
static int nonzero_mask(const empo_tensor *cond, empo_tensor **out) {
    empo_tensor *c = NULL;
    EMPO_TRY(empo_contiguous_nograd(&c, (empo_tensor *)cond));
    empo_tensor *m = empo_tensor_new(cond->ndim, cond->shape, EMPO_U8);
    if (!m) { empo_tensor_release(c); return EMPO_E_NOMEM; }
    int64_t n = empo_tensor_numel(c);
    const void *src = empo_tensor_data(c);
    uint8_t *dst = empo_tensor_data(m);
    for (int64_t i = 0; i < n; i++) {
        switch (c->dtype) {
        case EMPO_F32: dst[i] = ((const float *)src)[i] != 0; break;
        case EMPO_F64: dst[i] = ((const double *)src)[i] != 0; break;
        case EMPO_I32: dst[i] = ((const int32_t *)src)[i] != 0; break;
        case EMPO_I64: dst[i] = ((const int64_t *)src)[i] != 0; break;
        case EMPO_U8: dst[i] = ((const uint8_t *)src)[i] != 0; break;
        default: dst[i] = (((const uint16_t *)src)[i] & 0x7fff) != 0; break;   /* bf16/f16: +-0 is all but the sign */
        }
    }
    empo_tensor_release(c);
    *out = m;
    return EMPO_OK;
}

static inline void copy_elem(char *dst, const char *src, int esize) {
    switch (esize) {
    case 1: *dst = *src; break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    default: memcpy(dst, src, 8); break;
    }
}

/* Offset of row r (a position over dims 0..nd-2, row-major) under strides st. */
static int64_t row_offset(int64_t r, int nd, const int64_t *shape, const int64_t *st) {
    int64_t off = 0;
    for (int d = nd - 2; d >= 0; d--) {
        off += (r % shape[d]) * st[d];
        r /= shape[d];
    }
    return off;
}

/* f32 zeros shaped like t, on t's device */
static int zeros_like(empo_tensor **out, const empo_tensor *t) {
    empo_tensor *z = empo_tensor_new_like(t, EMPO_F32);
    if (!z) return EMPO_E_NOMEM;
    return empo_tensor_handover(out, z, empo_tensor_fill_(z, 0.0));
}

/* Records the node; node stays NULL when no gradient is needed. */
static int record(const char *name, empo_backward_fn fn, empo_tensor *out, int n, empo_tensor *const *in,
                  empo_node **node) {
    int st = EMPO_OK;
    *node = empo_node_record(name, fn, out, n, in, &st);
    return st;
}

/* ---- embedding: weight [V, D], ids [...] -> [..., D] ---- */

static int embedding_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    const empo_tensor *w = node->inputs[0], *ids = node->saved[0];
    if (!w) return EMPO_OK;
    EMPO_TRY(zeros_like(&gin[0], w));
    int64_t V = w->shape[0], D = w->shape[1], N = empo_tensor_numel(ids);
    float *gw = empo_tensor_data(gin[0]);
    const float *gy = empo_tensor_data(grad_out);   /* [N, D] */
    empo_kernels_of(grad_out)->index_rows_add(gw, gy, empo_tensor_data(ids), 1, V, N, D);
    return EMPO_OK;
}

int empo_embedding(empo_tensor **out, empo_tensor *weight, empo_tensor *ids) {
    if (!out) return empo_fail(EMPO_E_ARG, "embedding: NULL output pointer");
    EMPO_TRY(empo_check_input("embedding", "weight", weight, EMPO_DT_FLOAT, "weight", weight));
    EMPO_TRY(empo_check_input("embedding", "ids", ids, EMPO_DT_INDEX, "weight", weight));
    if (weight->ndim != 2)
        return empo_fail(EMPO_E_SHAPE, "embedding: weight %s must be 2-d [V, D]", empo_desc(weight));
    if (ids->ndim + 1 > EMPO_MAX_DIMS)
        return empo_fail(EMPO_E_SHAPE, "embedding: ids %s has too many dims", empo_desc(ids));
    int64_t V = weight->shape[0], D = weight->shape[1], N = empo_tensor_numel(ids);
    empo_tensor *idx = NULL, *w = NULL, *y = NULL;
    int st = checked_index("embedding", ids, V, "the rows of weight", &idx);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&w, weight);
    if (st == EMPO_OK) {
        int64_t shape[EMPO_MAX_DIMS];
        memcpy(shape, ids->shape, sizeof(int64_t) * (size_t)ids->ndim);
        shape[ids->ndim] = D;
        y = empo_tensor_new_on(ids->ndim + 1, shape, EMPO_F32, empo_tensor_device(weight));
        if (!y) st = EMPO_E_NOMEM;
    }
    if (st == EMPO_OK) {
        empo_kernels_of(y)->index_rows(empo_tensor_data(y), empo_tensor_data(w), empo_tensor_data(idx), 1, V, N, D, 4);
        empo_node *node;
        st = record("embedding", embedding_backward, y, 1, &weight, &node);
        if (node) empo_node_save(node, 0, idx);
    }
    empo_tensor_release(w);
    empo_tensor_release(idx);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

/* ---- index_select: x [..., D, ...] along dim, index [K] -> [..., K, ...] ---- */

static int index_select_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    const empo_tensor *x = node->inputs[0], *idx = node->saved[0];
    if (!x) return EMPO_OK;
    int dim = (int)node->i[0];
    EMPO_TRY(zeros_like(&gin[0], x));
    int64_t outer = prod(x->shape, 0, dim), inner = prod(x->shape, dim + 1, x->ndim);
    float *gx = empo_tensor_data(gin[0]);
    const float *gy = empo_tensor_data(grad_out);
    int64_t D = x->shape[dim], K = empo_tensor_numel(idx);
    empo_kernels_of(grad_out)->index_rows_add(gx, gy, empo_tensor_data(idx), outer, D, K, inner);
    return EMPO_OK;
}

int empo_index_select(empo_tensor **out, empo_tensor *x, int dim, empo_tensor *index) {
    if (!out) return empo_fail(EMPO_E_ARG, "index_select: NULL output pointer");
    EMPO_TRY(empo_check_input("index_select", "x", x, EMPO_DT_ANY, "x", x));
    EMPO_TRY(empo_check_input("index_select", "index", index, EMPO_DT_INDEX, "x", x));
    if (x->ndim < 1) return empo_fail(EMPO_E_SHAPE, "index_select: x %s must have at least 1 dim", empo_desc(x));
    if (index->ndim > 1)
        return empo_fail(EMPO_E_SHAPE, "index_select: index %s must be 1-d", empo_desc(index));
    EMPO_TRY(empo_wrap_dim("index_select", dim, x->ndim, &dim));
    EMPO_TRY(check_grad_dtype("index_select", 1, &x));
    char what[64];
    snprintf(what, sizeof what, "dim %d of x %s", dim, empo_desc(x));
    empo_tensor *idx = NULL, *xc = NULL, *y = NULL;
    int st = checked_index("index_select", index, x->shape[dim], what, &idx);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&xc, x);
    if (st == EMPO_OK) {
        int64_t shape[EMPO_MAX_DIMS];
        memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
        shape[dim] = empo_tensor_numel(idx);
        y = empo_tensor_new_on(x->ndim, shape, x->dtype, empo_tensor_device(x));
        if (!y) st = EMPO_E_NOMEM;
    }
    if (st == EMPO_OK) {
        int64_t outer = prod(x->shape, 0, dim), inner = prod(x->shape, dim + 1, x->ndim);
        int64_t D = x->shape[dim], K = empo_tensor_numel(idx);
        int es = empo_dtype_size(x->dtype);
        empo_kernels_of(y)->index_rows(empo_tensor_data(y), empo_tensor_data(xc), empo_tensor_data(idx), outer, D, K, inner,
                                   es);
        empo_node *node;
        st = record("index_select", index_select_backward, y, 1, &x, &node);
        if (node) { empo_node_save(node, 0, idx); node->i[0] = dim; }
    }
    empo_tensor_release(xc);
    empo_tensor_release(idx);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

/* ---- gather: out[..j..] = x[.. index[..j..] ..] along dim; out has index's shape ---- */

/* Offset in contiguous x of position f of index (shape ishape) with value v on dim. */
static int64_t gather_offset(int64_t f, int nd, const int64_t *ishape, const int64_t *xstr, int dim, int64_t v) {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        off += (d == dim ? v : f % ishape[d]) * xstr[d];
        f /= ishape[d];
    }
    return off;
}

static int gather_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    const empo_tensor *x = node->inputs[0], *idx = node->saved[0];
    if (!x) return EMPO_OK;
    EMPO_TRY(empo_tensor_zeros(&gin[0], x->ndim, x->shape, EMPO_F32));
    int64_t xstr[EMPO_MAX_DIMS];
    empo_contiguous_strides(x->ndim, x->shape, xstr);
    float *gx = empo_tensor_data(gin[0]);
    const float *gy = empo_tensor_data(grad_out);
    const int64_t *v = empo_tensor_data(idx);
    int64_t n = empo_tensor_numel(idx);
    /* serial: different positions may hit the same element of x */
    for (int64_t f = 0; f < n; f++)
        gx[gather_offset(f, x->ndim, node->out_shape, xstr, (int)node->i[0], v[f])] += gy[f];
    return EMPO_OK;
}

int empo_gather(empo_tensor **out, empo_tensor *x, int dim, empo_tensor *index) {
    if (!out) return empo_fail(EMPO_E_ARG, "gather: NULL output pointer");
    EMPO_TRY(empo_check_tensor("gather", "x", x, EMPO_DT_ANY));
    EMPO_TRY(empo_check_tensor("gather", "index", index, EMPO_DT_INDEX));
    if (x->ndim < 1 || index->ndim != x->ndim)
        return empo_fail(EMPO_E_SHAPE, "gather: index %s must have as many dims as x %s (at least 1)",
                         empo_desc(index), empo_desc(x));
    EMPO_TRY(empo_wrap_dim("gather", dim, x->ndim, &dim));
    for (int d = 0; d < x->ndim; d++)
        if (d != dim && index->shape[d] > x->shape[d])
            return empo_fail(EMPO_E_SHAPE, "gather: index %s is larger than x %s in dim %d (%lld > %lld)",
                             empo_desc(index), empo_desc(x), d, (long long)index->shape[d], (long long)x->shape[d]);
    EMPO_TRY(check_grad_dtype("gather", 1, &x));
    char what[64];
    snprintf(what, sizeof what, "dim %d of x %s", dim, empo_desc(x));
    empo_tensor *idx = NULL, *xc = NULL, *y = NULL;
    int st = checked_index("gather", index, x->shape[dim], what, &idx);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&xc, x);
    if (st == EMPO_OK && !(y = empo_tensor_new(index->ndim, index->shape, x->dtype))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        int64_t xstr[EMPO_MAX_DIMS], n = empo_tensor_numel(idx);
        empo_contiguous_strides(x->ndim, x->shape, xstr);
        int es = empo_dtype_size(x->dtype);
        const char *xs = empo_tensor_data(xc);
        char *ys = empo_tensor_data(y);
        const int64_t *v = empo_tensor_data(idx);
        #pragma omp parallel for num_threads(empo_omp_threads_for(n * 4)) schedule(static)
        for (int64_t f = 0; f < n; f++)
            copy_elem(ys + f * es, xs + gather_offset(f, x->ndim, index->shape, xstr, dim, v[f]) * es, es);
        empo_node *node;
        st = record("gather", gather_backward, y, 1, &x, &node);
        if (node) { empo_node_save(node, 0, idx); node->i[0] = dim; }
    }
    empo_tensor_release(xc);
    empo_tensor_release(idx);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

/* ---- cat: n tensors of one dtype, equal shapes except along dim ---- */

/* Views of y as [outer, Dtot, inner] and x_k as [outer, D_k, inner]: copies
 * the block of x_k to columns off .. off+D_k of y (or back when to_x); on a
 * device (dev: its table) as one strided copy there. */
static void cat_block(const empo_kernel_table *dev, char *y, char *xk, int64_t outer, int64_t Dtot, int64_t off,
                      int64_t Dk, int64_t inner, int es, int to_x) {
    if (dev) {
        const int64_t ys = Dtot * inner, xs = Dk * inner;
        const empo_strided_copy c = {2, es, {outer, Dk * inner}, {to_x ? xs : ys, 1}, {to_x ? ys : xs, 1}};
        char *yb = y + off * inner * es;
        dev->copy_strided(to_x ? xk : yb, to_x ? yb : xk, &c);
        return;
    }
    size_t blk = (size_t)(Dk * inner * es);
    #pragma omp parallel for num_threads(empo_omp_threads_for(outer * Dk * inner)) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        char *yp = y + ((o * Dtot + off) * inner) * es, *xp = xk + (size_t)o * blk;
        if (to_x) memcpy(xp, yp, blk); else memcpy(yp, xp, blk);
    }
}

static int cat_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    int dim = (int)node->i[0], nd = node->out_ndim;
    const int64_t *sizes = empo_tensor_data(node->saved[0]);
    int64_t outer = prod(node->out_shape, 0, dim), inner = prod(node->out_shape, dim + 1, nd);
    int64_t Dtot = node->out_shape[dim], off = 0;
    const empo_kernel_table *dev = empo_on_device(grad_out) ? empo_kernels_of(grad_out) : NULL;
    for (int k = 0; k < node->n_inputs; off += sizes[k], k++) {
        const empo_tensor *x = node->inputs[k];
        if (!x) continue;
        if (!(gin[k] = empo_tensor_new_on(x->ndim, x->shape, EMPO_F32, empo_tensor_device(grad_out))))
            return EMPO_E_NOMEM;
        cat_block(dev, empo_tensor_data(grad_out), empo_tensor_data(gin[k]), outer, Dtot, off, sizes[k], inner, 4, 1);
    }
    return EMPO_OK;
}

static int cat_check(int n, empo_tensor *const *xs, int *dim) {
    if (n < 1 || !xs) return empo_fail(EMPO_E_ARG, "cat: need at least one tensor (got %d)", n);
    for (int k = 0; k < n; k++) {
        char arg[32];
        snprintf(arg, sizeof arg, "xs[%d]", k);
        EMPO_TRY(empo_check_input("cat", arg, xs[k], EMPO_DT_ANY, "xs[0]", xs[0]));
    }
    const empo_tensor *a = xs[0];
    if (a->ndim < 1) return empo_fail(EMPO_E_SHAPE, "cat: xs[0] %s must have at least 1 dim", empo_desc(a));
    EMPO_TRY(empo_wrap_dim("cat", *dim, a->ndim, dim));
    for (int k = 1; k < n; k++) {
        const empo_tensor *b = xs[k];
        if (b->dtype != a->dtype)
            return empo_fail(EMPO_E_DTYPE, "cat: xs[%d] %s has another dtype than xs[0] %s", k, empo_desc(b),
                             empo_desc(a));
        int ok = b->ndim == a->ndim;
        for (int d = 0; ok && d < a->ndim; d++) ok = d == *dim || b->shape[d] == a->shape[d];
        if (!ok)
            return empo_fail(EMPO_E_SHAPE, "cat: xs[%d] %s does not fit xs[0] %s (shapes must agree except in dim %d)",
                             k, empo_desc(b), empo_desc(a), *dim);
    }
    return EMPO_OK;
}

int empo_cat(empo_tensor **out, int n, empo_tensor *const *xs, int dim) {
    if (!out) return empo_fail(EMPO_E_ARG, "cat: NULL output pointer");
    EMPO_TRY(cat_check(n, xs, &dim));
    EMPO_TRY(check_grad_dtype("cat", n, xs));
    const empo_tensor *a = xs[0];
    int64_t shape[EMPO_MAX_DIMS], nn = n;
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    empo_tensor *sizes = empo_tensor_new(1, &nn, EMPO_I64);   /* each input's size along dim, for backward */
    if (!sizes) return EMPO_E_NOMEM;
    int64_t *sz = empo_tensor_data(sizes);
    shape[dim] = 0;
    for (int k = 0; k < n; k++) shape[dim] += (sz[k] = xs[k]->shape[dim]);
    empo_tensor *y = empo_tensor_new_on(a->ndim, shape, a->dtype, empo_tensor_device(a));
    int st = y ? EMPO_OK : EMPO_E_NOMEM;
    int64_t outer = prod(shape, 0, dim), inner = prod(shape, dim + 1, a->ndim), off = 0;
    const empo_kernel_table *dev = empo_on_device(a) ? empo_kernels_of(a) : NULL;
    for (int k = 0; st == EMPO_OK && k < n; off += sz[k], k++) {
        empo_tensor *xc = NULL;
        st = empo_contiguous_nograd(&xc, xs[k]);
        if (st != EMPO_OK) break;
        cat_block(dev, empo_tensor_data(y), empo_tensor_data(xc), outer, shape[dim], off, sz[k], inner,
                  empo_dtype_size(a->dtype), 0);
        empo_tensor_release(xc);
    }
    if (st == EMPO_OK) {
        empo_node *node;
        st = record("cat", cat_backward, y, n, xs, &node);
        if (node) { empo_node_save(node, 0, sizes); node->i[0] = dim; }
    }
    empo_tensor_release(sizes);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

/* ---- where / masked_fill: out = mask ? a : b over the broadcast shape ---- */

/* y (contiguous, shape) from u8 mask m, a and b, each read through its
 * broadcast strides (0 on broadcast dims); elements of es bytes. */
static void select_strided(char *y, int es, int nd, const int64_t *shape, const uint8_t *m, const int64_t *sm,
                           const char *a, const int64_t *sa, const char *b, const int64_t *sb) {
    int64_t n = empo_shape_numel(nd, shape), inner = nd ? shape[nd - 1] : 1;
    int64_t rows = inner ? n / inner : 0;
    int64_t im = nd ? sm[nd - 1] : 0, ia = nd ? sa[nd - 1] : 0, ib = nd ? sb[nd - 1] : 0;
    #pragma omp parallel for num_threads(empo_omp_threads_for(n)) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t om = row_offset(r, nd, shape, sm), oa = row_offset(r, nd, shape, sa), ob = row_offset(r, nd, shape, sb);
        char *yr = y + r * inner * es;
        for (int64_t i = 0; i < inner; i++) {
            const char *src = m[om + i * im] ? a + (oa + i * ia) * es : b + (ob + i * ib) * es;
            copy_elem(yr + i * es, src, es);
        }
    }
}

/* y (contiguous) = mask ? a : b on a device: the three broadcast whole
 * (empo_expand_on_device), then the select kernel */
static int select_on_device(empo_tensor *y, const empo_tensor *mask, const empo_tensor *a, const empo_tensor *b) {
    empo_tensor *mm = NULL, *am = NULL, *bm = NULL;
    int st = empo_expand_on_device(&mm, mask, y);
    if (st == EMPO_OK) st = empo_expand_on_device(&am, a, y);
    if (st == EMPO_OK) st = empo_expand_on_device(&bm, b, y);
    if (st == EMPO_OK)
        empo_kernels_of(y)->select(empo_tensor_data(y), empo_tensor_data(mm), empo_tensor_data(am),
                                   empo_tensor_data(bm), empo_tensor_numel(y), empo_dtype_size(y->dtype));
    empo_tensor_release(mm), empo_tensor_release(am), empo_tensor_release(bm);
    return st;
}

/* a 0-d tensor holding value, of dtype, on like's device */
static int scalar_like(empo_tensor **out, const empo_tensor *like, int dtype, double value) {
    int64_t unused_shape = 1;
    empo_tensor *host = NULL;
    EMPO_TRY(empo_tensor_full(&host, 0, &unused_shape, dtype, value));
    if (!empo_on_device(like)) {
        *out = host;
        return EMPO_OK;
    }
    int st = empo_to_device_nograd(out, host, empo_tensor_device(like));
    empo_tensor_release(host);
    return st;
}

/* grad_out where the saved mask equals `keep` (else 0), summed down to x's shape. */
static int masked_grad(empo_node *node, empo_tensor *grad_out, int keep, const empo_tensor *x, empo_tensor **gx) {
    const empo_tensor *mask = node->saved[0];
    int nd = node->out_ndim;
    empo_tensor *full = empo_tensor_new_on(nd, node->out_shape, EMPO_F32, empo_tensor_device(grad_out));
    if (!full) return EMPO_E_NOMEM;
    if (empo_on_device(grad_out)) {
        empo_tensor *zero = NULL;
        int st = scalar_like(&zero, grad_out, EMPO_F32, 0.0);
        if (st == EMPO_OK) st = select_on_device(full, mask, keep ? grad_out : zero, keep ? zero : grad_out);
        if (st == EMPO_OK) st = empo_reduce_to_shape(gx, full, x->ndim, x->shape);
        empo_tensor_release(zero);
        empo_tensor_release(full);
        return st;
    }
    int64_t sm[EMPO_MAX_DIMS], s1[EMPO_MAX_DIMS], s0[EMPO_MAX_DIMS] = {0};
    float zero = 0;
    empo_broadcast_strides(mask, nd, node->out_shape, sm);
    empo_contiguous_strides(nd, node->out_shape, s1);
    const char *g = empo_tensor_data(grad_out), *z = (const char *)&zero;
    select_strided(empo_tensor_data(full), 4, nd, node->out_shape, empo_tensor_data(mask), sm,
                   keep ? g : z, keep ? s1 : s0, keep ? z : g, keep ? s0 : s1);
    int st = empo_reduce_to_shape(gx, full, x->ndim, x->shape);
    empo_tensor_release(full);
    return st;
}

static int where_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    if (node->inputs[0]) EMPO_TRY(masked_grad(node, grad_out, 1, node->inputs[0], &gin[0]));
    if (node->inputs[1]) EMPO_TRY(masked_grad(node, grad_out, 0, node->inputs[1], &gin[1]));
    return EMPO_OK;
}

/* Shared by where and masked_fill: the node's inputs are grad_in (for
 * masked_fill just x, since its a is the fill value). */
static int select_op(const char *op, empo_tensor **out, empo_tensor *cond, empo_tensor *a, empo_tensor *b,
                     int n_grad, empo_tensor *const *grad_in, empo_backward_fn backward) {
    int nd1, nd;
    int64_t s1[EMPO_MAX_DIMS], shape[EMPO_MAX_DIMS];
    EMPO_TRY(empo_broadcast_shapes(op, cond->ndim, cond->shape, a->ndim, a->shape, &nd1, s1));
    EMPO_TRY(empo_broadcast_shapes(op, nd1, s1, b->ndim, b->shape, &nd, shape));
    EMPO_TRY(check_grad_dtype(op, n_grad, grad_in));
    empo_tensor *mask = NULL;   /* u8: 1 where cond is nonzero (NaN counts) */
    if (empo_on_device(cond)) EMPO_TRY(empo_copy_as(&mask, cond, EMPO_U8));
    else EMPO_TRY(nonzero_mask(cond, &mask));
    empo_tensor *y = empo_tensor_new_on(nd, shape, a->dtype, empo_tensor_device(a));
    if (!y) { empo_tensor_release(mask); return EMPO_E_NOMEM; }
    int st = EMPO_OK;
    if (empo_on_device(y)) {
        st = select_on_device(y, mask, a, b);
    } else {
        int64_t sm[EMPO_MAX_DIMS], sa[EMPO_MAX_DIMS], sb[EMPO_MAX_DIMS];
        empo_broadcast_strides(mask, nd, shape, sm);
        empo_broadcast_strides(a, nd, shape, sa);
        empo_broadcast_strides(b, nd, shape, sb);
        select_strided(empo_tensor_data(y), empo_dtype_size(a->dtype), nd, shape, empo_tensor_data(mask), sm,
                       empo_tensor_data(a), sa, empo_tensor_data(b), sb);
    }
    empo_node *node = NULL;
    if (st == EMPO_OK) st = record(op, backward, y, n_grad, grad_in, &node);
    if (node) empo_node_save(node, 0, mask);
    empo_tensor_release(mask);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

int empo_where(empo_tensor **out, empo_tensor *cond, empo_tensor *a, empo_tensor *b) {
    if (!out) return empo_fail(EMPO_E_ARG, "where: NULL output pointer");
    EMPO_TRY(empo_check_input("where", "cond", cond, EMPO_DT_ANY, NULL, NULL));
    EMPO_TRY(empo_check_input("where", "a", a, EMPO_DT_ANY, "cond", cond));
    EMPO_TRY(empo_check_input("where", "b", b, EMPO_DT_ANY, "cond", cond));
    if (a->dtype != b->dtype)
        return empo_fail(EMPO_E_DTYPE, "where: a %s and b %s must have the same dtype", empo_desc(a), empo_desc(b));
    empo_tensor *ab[2] = {a, b};
    return select_op("where", out, cond, a, b, 2, ab, where_backward);
}

static int masked_fill_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    if (node->inputs[0]) EMPO_TRY(masked_grad(node, grad_out, 0, node->inputs[0], &gin[0]));
    return EMPO_OK;
}

int empo_masked_fill(empo_tensor **out, empo_tensor *x, empo_tensor *mask, double value) {
    if (!out) return empo_fail(EMPO_E_ARG, "masked_fill: NULL output pointer");
    EMPO_TRY(empo_check_input("masked_fill", "x", x, EMPO_DT_ANY, NULL, NULL));
    EMPO_TRY(empo_check_input("masked_fill", "mask", mask, EMPO_DT_ANY, "x", x));
    static const double lim[][2] = {[EMPO_I32] = {-2147483648.0, 2147483647.0},
                                    [EMPO_I64] = {-9223372036854775808.0, 9223372036854774784.0},
                                    [EMPO_U8] = {0, 255}};
    if (empo_is_int(x->dtype) && !(value >= lim[x->dtype][0] && value <= lim[x->dtype][1]))
        return empo_fail(EMPO_E_ARG, "masked_fill: value %g does not fit x %s", value, empo_desc(x));
    empo_tensor *fill = NULL;   /* 0-d, so its broadcast strides are all 0 */
    EMPO_TRY(scalar_like(&fill, x, x->dtype, value));
    int st = select_op("masked_fill", out, mask, fill, x, 1, &x, masked_fill_backward);
    empo_tensor_release(fill);
    return st;
}
