/* op_reduce.c — sum/mean/max/argmax over a dim or everything, softmax and
 * log_softmax, with backward. A reduced dim d of a contiguous x is seen as
 * (outer, n, inner): outer = prod(shape[:d]), n = shape[d], inner = prod(shape[d+1:]). */
#include <string.h>
#include "autograd/autograd_internal.h"
#include "op_dispatch.h"

typedef struct { int64_t outer, n, inner; } split3;

static split3 split_at(const empo_tensor *x, int d) {
    split3 s = {1, x->ndim ? x->shape[d] : 1, 1};
    for (int i = 0; i < d; i++) s.outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++) s.inner *= x->shape[i];
    return s;
}

/* shape of x reduced over d */
static int reduced_shape(const empo_tensor *x, int d, int keepdim, int64_t *shape) {
    int k = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != d) shape[k++] = x->shape[i];
        else if (keepdim) shape[k++] = 1;
    }
    return k;
}

/* gx (x's shape) = g broadcast back over the reduced dim, times scale;
 * saved: i[0] = dim (or -1 for all) */
static int sum_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *x = node->inputs[0];
    int d = (int)node->i[0];
    split3 s = d < 0 ? (split3){1, empo_tensor_numel(x), 1} : split_at(x, d);
    empo_tensor *gx = empo_tensor_new_like(x, EMPO_F32);
    if (!gx) return EMPO_E_NOMEM;
    if (empo_on_device(gx)) {   /* g copied across the reduced dim (stride 0), then scaled */
        const empo_kernel_table *K = empo_kernels_of(gx);
        empo_strided_copy c = {.ndim = 3, .esize = 4, .shape = {s.outer, s.n, s.inner},
                               .dst_strides = {s.n * s.inner, s.inner, 1}, .src_strides = {s.inner, 0, 1}};
        K->copy_strided(empo_tensor_data(gx), empo_tensor_data(g), &c);
        if (node->f[0] != 1.0) K->scale(empo_tensor_data(gx), empo_tensor_numel(gx), (float)node->f[0]);
        gin[0] = gx;
        return EMPO_OK;
    }
    float *o = empo_tensor_data(gx), scale = (float)node->f[0];
    const float *pg = empo_tensor_data(g);
    for (int64_t a = 0; a < s.outer; a++)
        for (int64_t k = 0; k < s.n; k++)
            for (int64_t i = 0; i < s.inner; i++) o[(a * s.n + k) * s.inner + i] = pg[a * s.inner + i] * scale;
    gin[0] = gx;
    return EMPO_OK;
}

static int reduce_sum(empo_tensor **out, const char *name, empo_tensor *x, int dim, int all, int keepdim,
                      int mean) {
    EMPO_TRY(empo_check_input(name, "input", x, EMPO_DT_FLOAT, "input", x));
    int d = -1;
    if (!all) EMPO_TRY(empo_wrap_dim(name, dim, x->ndim, &d));
    if (x->ndim == 0) d = -1;
    int64_t shape[EMPO_MAX_DIMS];
    int nd = d < 0 ? 0 : reduced_shape(x, d, keepdim, shape);
    split3 s = d < 0 ? (split3){1, empo_tensor_numel(x), 1} : split_at(x, d);
    empo_tensor *xc = NULL;
    EMPO_TRY(empo_contiguous_nograd(&xc, x));
    empo_tensor *y = empo_tensor_new_on(nd, shape, EMPO_F32, empo_tensor_device(x));
    if (!y) { empo_tensor_release(xc); return EMPO_E_NOMEM; }
    empo_kernels_of(x)->sum_dim(empo_tensor_data(y), empo_tensor_data(xc), s.outer, s.n, s.inner);
    empo_tensor_release(xc);
    double scale = 1.0;
    if (mean && empo_on_device(y)) {
        scale = s.n ? 1.0 / (double)s.n : 0.0;
        int st = s.n ? EMPO_OK : empo_tensor_fill_(y, __builtin_nan(""));
        if (s.n) empo_kernels_of(y)->scale(empo_tensor_data(y), empo_tensor_numel(y), (float)scale);
        if (st != EMPO_OK) return empo_tensor_handover(out, y, st);
    } else if (mean) {
        scale = s.n ? 1.0 / (double)s.n : 0.0;
        float *p = empo_tensor_data(y);
        int64_t m = empo_tensor_numel(y);
        for (int64_t i = 0; i < m; i++) p[i] = s.n ? (float)(p[i] * scale) : __builtin_nanf("");
    }
    int st;
    empo_node *node = empo_node_record(name, sum_backward, y, 1, &x, &st);
    if (node) { node->i[0] = d; node->f[0] = scale; }
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

int empo_sum(empo_tensor **out, empo_tensor *x) { return reduce_sum(out, "sum", x, 0, 1, 0, 0); }
int empo_mean(empo_tensor **out, empo_tensor *x) { return reduce_sum(out, "mean", x, 0, 1, 0, 1); }
int empo_sum_dim(empo_tensor **out, empo_tensor *x, int dim, int keepdim) { return reduce_sum(out, "sum", x, dim, 0, keepdim, 0); }
int empo_mean_dim(empo_tensor **out, empo_tensor *x, int dim, int keepdim) { return reduce_sum(out, "mean", x, dim, 0, keepdim, 1); }

/* saved[0] = indices (outer, inner) as i64; i[0] = dim or -1 */
static int max_backward(empo_node *node, empo_tensor *g, empo_tensor **gin);

/* On a device, through the host: g and the indices come down, the
 * gradient is scattered there and goes up (no scatter kernel yet). */
static int max_backward_via_host(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *hg = NULL, *hidx = NULL, *dev_idx = node->saved[0], *hgx = NULL;
    int st = empo_to_host_nograd(&hg, g);
    if (st == EMPO_OK) st = empo_to_host_nograd(&hidx, dev_idx);
    if (st == EMPO_OK) {
        node->saved[0] = hidx;
        st = max_backward(node, hg, &hgx);
        node->saved[0] = dev_idx;
    }
    if (st == EMPO_OK) st = empo_to_device_nograd(&gin[0], hgx, empo_tensor_device(g));
    empo_tensor_release(hg);
    empo_tensor_release(hidx);
    empo_tensor_release(hgx);
    return st;
}

static int max_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    if (empo_on_device(g)) return max_backward_via_host(node, g, gin);
    empo_tensor *x = node->inputs[0];
    int d = (int)node->i[0];
    split3 s = d < 0 ? (split3){1, empo_tensor_numel(x), 1} : split_at(x, d);
    empo_tensor *gx = NULL;
    EMPO_TRY(empo_tensor_zeros(&gx, x->ndim, x->shape, EMPO_F32));
    float *o = empo_tensor_data(gx);
    const float *pg = empo_tensor_data(g);
    const int64_t *idx = empo_tensor_data(node->saved[0]);
    for (int64_t a = 0; a < s.outer; a++)
        for (int64_t i = 0; i < s.inner; i++)
            o[(a * s.n + idx[a * s.inner + i]) * s.inner + i] = pg[a * s.inner + i];
    gin[0] = gx;
    return EMPO_OK;
}

static int reduce_max(empo_tensor **values, empo_tensor **indices, const char *name, empo_tensor *x, int dim,
                      int all, int keepdim) {
    EMPO_TRY(empo_check_input(name, "input", x, EMPO_DT_FLOAT, "input", x));
    int d = -1;
    if (!all) EMPO_TRY(empo_wrap_dim(name, dim, x->ndim, &d));
    if (x->ndim == 0) d = -1;
    split3 s = d < 0 ? (split3){1, empo_tensor_numel(x), 1} : split_at(x, d);
    if (s.n == 0) return empo_fail(EMPO_E_SHAPE, "%s: cannot reduce over an empty dim of %s", name, empo_desc(x));
    int64_t shape[EMPO_MAX_DIMS];
    int nd = d < 0 ? 0 : reduced_shape(x, d, keepdim, shape);
    empo_tensor *xc = NULL, *v = NULL, *ix = NULL;
    EMPO_TRY(empo_contiguous_nograd(&xc, x));
    v = empo_tensor_new_on(nd, shape, EMPO_F32, empo_tensor_device(x));
    ix = empo_tensor_new_on(nd, shape, EMPO_I64, empo_tensor_device(x));
    int st = v && ix ? EMPO_OK : EMPO_E_NOMEM;
    if (st == EMPO_OK)
        empo_kernels_of(x)->max_dim(empo_tensor_data(v), empo_tensor_data(ix), empo_tensor_data(xc), s.outer, s.n,
                                s.inner);
    empo_tensor_release(xc);
    empo_node *node = st == EMPO_OK && values ? empo_node_record(name, max_backward, v, 1, &x, &st) : NULL;
    if (node) { node->i[0] = d; empo_node_save(node, 0, ix); }
    if (st != EMPO_OK) { empo_tensor_release(v); empo_tensor_release(ix); return st; }
    if (values) *values = v; else empo_tensor_release(v);
    if (indices) *indices = ix; else empo_tensor_release(ix);
    return EMPO_OK;
}

int empo_max_dim(empo_tensor **values, empo_tensor **indices, empo_tensor *x, int dim, int keepdim) {
    return reduce_max(values, indices, "max", x, dim, 0, keepdim);
}
int empo_argmax(empo_tensor **out, empo_tensor *x, int dim, int keepdim) {
    return reduce_max(NULL, out, "argmax", x, dim, 0, keepdim);
}
int empo_max(empo_tensor **out, empo_tensor *x) { return reduce_max(out, NULL, "max", x, 0, 1, 0); }

/* saved[0] = y; i[0] = dim, i[1] = log */
static int softmax_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *y = node->saved[0];
    split3 s = split_at(y, (int)node->i[0]);
    empo_tensor *gx = empo_tensor_new_like(y, EMPO_F32);
    if (!gx) return EMPO_E_NOMEM;
    empo_kernels_of(y)->softmax_backward(
        empo_tensor_data(gx), empo_tensor_data(g), empo_tensor_data(y), s.outer, s.n, s.inner, (int)node->i[1]);
    gin[0] = gx;
    return EMPO_OK;
}

static int softmax_op(empo_tensor **out, const char *name, empo_tensor *x, int dim, int want_log) {
    EMPO_TRY(empo_check_input(name, "input", x, EMPO_DT_FLOAT, "input", x));
    int d = 0;
    if (x->ndim) EMPO_TRY(empo_wrap_dim(name, dim, x->ndim, &d));
    split3 s = split_at(x, d);
    empo_tensor *xc = NULL;
    EMPO_TRY(empo_contiguous_nograd(&xc, x));
    empo_tensor *y = empo_tensor_new_like(x, EMPO_F32);
    if (!y) { empo_tensor_release(xc); return EMPO_E_NOMEM; }
    empo_kernels_of(x)->softmax(empo_tensor_data(y), empo_tensor_data(xc), s.outer, s.n, s.inner, want_log);
    empo_tensor_release(xc);
    int st;
    empo_node *node = empo_node_record(name, softmax_backward, y, 1, &x, &st);
    if (node) {
        node->i[0] = d;
        node->i[1] = want_log;
        st = empo_node_save_output(node, 0, y);
    }
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

int empo_softmax(empo_tensor **out, empo_tensor *x, int dim) { return softmax_op(out, "softmax", x, dim, 0); }
int empo_log_softmax(empo_tensor **out, empo_tensor *x, int dim) { return softmax_op(out, "log_softmax", x, dim, 1); }
