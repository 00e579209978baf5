/* op_views.c — view ops (share storage) and their autograd.
 *
 * Each view is a pure function of geometry (shape, strides, offset). The
 * backward applies the same function to a zero tensor of the input's shape
 * and scatter-adds the gradient through the resulting geometry, so one
 * backward serves every view kind (expand's repeated elements add up). */
#include <string.h>
#include "autograd/autograd_internal.h"
#include "op_dispatch.h"

typedef struct {
    int ndim;
    int64_t shape[EMPO_MAX_DIMS], strides[EMPO_MAX_DIMS], offset;
} geom;

enum view_kind { V_RESHAPE, V_PERMUTE, V_EXPAND, V_SLICE, V_SELECT };

static geom geom_of(const empo_tensor *t) {
    geom g = {.ndim = t->ndim, .offset = t->offset};
    memcpy(g.shape, t->shape, sizeof g.shape);
    memcpy(g.strides, t->strides, sizeof g.strides);
    return g;
}

/* Strides for viewing `in` as (ndim, shape) without copying, or fail.
 * Input dims are grouped into chunks whose elements are evenly spaced; each
 * chunk must be covered exactly by consecutive output dims. */
static int reshape_strides(const geom *in, int ndim, const int64_t *shape, int64_t *strides) {
    if (in->ndim == 0) {
        for (int d = 0; d < ndim; d++) strides[d] = 1;
        return EMPO_OK;
    }
    int o = ndim - 1;
    int64_t base = in->strides[in->ndim - 1], in_n = 1, out_n = 1;
    for (int i = in->ndim - 1; i >= 0; i--) {
        in_n *= in->shape[i];
        int chunk_ends = i == 0 || (in->shape[i - 1] != 1 && in->strides[i - 1] != in_n * base);
        if (!chunk_ends) continue;
        while (o >= 0 && (out_n < in_n || shape[o] == 1)) {
            strides[o] = out_n * base;
            out_n *= shape[o--];
        }
        if (out_n != in_n) return EMPO_E_SHAPE;
        if (i > 0) {
            base = in->strides[i - 1];
            in_n = out_n = 1;
        }
    }
    return o == -1 ? EMPO_OK : EMPO_E_SHAPE;
}

static int apply(int kind, const int64_t *p, const int64_t *out_shape, int out_ndim, const geom *in, geom *out) {
    *out = *in;
    switch (kind) {
    case V_RESHAPE:
        out->ndim = out_ndim;
        memcpy(out->shape, out_shape, sizeof(int64_t) * (size_t)out_ndim);
        if (empo_shape_numel(in->ndim, in->shape) == 0) {
            empo_contiguous_strides(out_ndim, out_shape, out->strides);
            return EMPO_OK;
        }
        return reshape_strides(in, out_ndim, out_shape, out->strides);
    case V_PERMUTE:
        for (int d = 0; d < in->ndim; d++) {
            int src = (int)((p[0] >> (4 * d)) & 0xf);
            out->shape[d] = in->shape[src];
            out->strides[d] = in->strides[src];
        }
        return EMPO_OK;
    case V_EXPAND: {
        out->ndim = out_ndim;
        int lead = out_ndim - in->ndim;
        for (int d = 0; d < out_ndim; d++) {
            out->shape[d] = out_shape[d];
            out->strides[d] = d < lead ? 0 : (in->shape[d - lead] == 1 && out_shape[d] != 1 ? 0 : in->strides[d - lead]);
        }
        return EMPO_OK;
    }
    case V_SLICE: /* p = dim, start, step; length from out_shape */
        out->offset += p[1] * in->strides[p[0]];
        out->shape[p[0]] = out_shape[p[0]];
        out->strides[p[0]] *= p[2];
        return EMPO_OK;
    default: /* V_SELECT: p = dim, index */
        out->offset += p[1] * in->strides[p[0]];
        for (int d = (int)p[0]; d < in->ndim - 1; d++) {
            out->shape[d] = in->shape[d + 1];
            out->strides[d] = in->strides[d + 1];
        }
        out->ndim--;
        return EMPO_OK;
    }
}

/* dst (through geometry g over base) += src (contiguous, g's shape) */
static void scatter_add(float *base, const geom *g, const float *src) {
    int64_t n = empo_shape_numel(g->ndim, g->shape);
    int64_t inner = g->ndim ? g->shape[g->ndim - 1] : 1, st = g->ndim ? g->strides[g->ndim - 1] : 1;
    for (int64_t row = 0; inner && row < n / inner; row++) {
        float *d = base + g->offset + empo_linear_offset(row, g->ndim - 1, g->shape, g->strides);
        const float *s = src + row * inner;
        for (int64_t i = 0; i < inner; i++) d[i * st] += s[i];
    }
}

/* Gradient of a permute: grad_out read through the inverse permutation,
 * copied contiguous (a parallel strided copy). */
static int permute_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    int nd = grad_out->ndim;
    int64_t shape[EMPO_MAX_DIMS], strides[EMPO_MAX_DIMS];
    for (int d = 0; d < nd; d++) {   /* output dim d came from input dim src */
        int src = (int)((node->i[1] >> (4 * d)) & 0xf);
        shape[src] = grad_out->shape[d];
        strides[src] = grad_out->strides[d];
    }
    empo_tensor *v = empo_tensor_view_of(grad_out, nd, shape, strides, grad_out->offset);
    if (!v) return EMPO_E_NOMEM;
    int st = empo_copy_as(&gin[0], v, EMPO_F32);
    empo_tensor_release(v);
    return st;
}

/* On a device: an expand's gradient is summed over what it repeated; a
 * slice's or select's (no element twice) is copied into its place in
 * zeros by the strided-copy kernel. */
static int device_view_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    empo_tensor *x = node->inputs[0];
    int kind = (int)node->i[0];
    if (kind == V_EXPAND) return empo_reduce_to_shape(&gin[0], grad_out, x->ndim, x->shape);
    empo_tensor *z = empo_tensor_new_like(x, EMPO_F32), *g = NULL;
    if (!z) return EMPO_E_NOMEM;
    int st = empo_tensor_fill_(z, 0.0);
    geom zg = geom_of(z), og;
    if (st == EMPO_OK && apply(kind, &node->i[1], node->out_shape, node->out_ndim, &zg, &og) != EMPO_OK)
        st = empo_fail(EMPO_E_STATE, "%s backward: geometry failed (internal error)", node->name);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&g, grad_out);
    if (st == EMPO_OK) {
        empo_strided_copy c = {.ndim = og.ndim, .esize = 4};
        int64_t src[EMPO_MAX_DIMS];
        empo_contiguous_strides(og.ndim, og.shape, src);
        for (int d = 0; d < og.ndim; d++)
            c.shape[d] = og.shape[d], c.dst_strides[d] = og.strides[d], c.src_strides[d] = src[d];
        empo_kernels_of(z)->copy_strided((float *)empo_tensor_data(z) + og.offset, empo_tensor_data(g), &c);
    }
    empo_tensor_release(g);
    return empo_tensor_handover(&gin[0], z, st);
}

static int view_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    empo_tensor *x = node->inputs[0];
    int kind = (int)node->i[0];
    if (kind == V_RESHAPE) {   /* grad_out is contiguous: the same memory in x's shape */
        gin[0] = empo_tensor_view_of(grad_out, x->ndim, x->shape, x->strides, grad_out->offset);
        if (gin[0]) empo_contiguous_strides(x->ndim, x->shape, gin[0]->strides);
        return gin[0] ? EMPO_OK : EMPO_E_NOMEM;
    }
    if (kind == V_PERMUTE) return permute_backward(node, grad_out, gin);
    if (empo_on_device(grad_out)) return device_view_backward(node, grad_out, gin);
    /* slices, selects and expands: scatter-add into zeros (expand's
     * repeated elements add up) */
    empo_tensor *z = NULL;
    EMPO_TRY(empo_tensor_zeros(&z, x->ndim, x->shape, EMPO_F32));
    geom zg = geom_of(z), og;
    if (apply(kind, &node->i[1], node->out_shape, node->out_ndim, &zg, &og) != EMPO_OK) {
        empo_tensor_release(z);
        return empo_fail(EMPO_E_STATE, "%s backward: geometry failed (internal error)", node->name);
    }
    scatter_add(empo_tensor_data(z), &og, empo_tensor_data(grad_out));
    gin[0] = z;
    return EMPO_OK;
}

/* Makes the view of x described by (kind, p) and records its node. */
static int make_view(empo_tensor **out, const char *name, empo_tensor *x, int kind, const int64_t *p, int np,
                     int out_ndim, const int64_t *out_shape) {
    geom in = geom_of(x), o;
    in.offset = x->offset;
    if (apply(kind, p, out_shape, out_ndim, &in, &o) != EMPO_OK)
        return empo_fail(EMPO_E_SHAPE, "%s: cannot view %s with strides that do not merge; use reshape", name,
                         empo_desc(x));
    empo_tensor *y = empo_tensor_view_of(x, o.ndim, o.shape, o.strides, o.offset);
    if (!y) return EMPO_E_NOMEM;
    int st;
    empo_node *node = empo_node_record(name, view_backward, y, 1, &x, &st);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    if (node) {
        node->i[0] = kind;
        for (int k = 0; k < np; k++) node->i[1 + k] = p[k];
    }
    *out = y;
    return EMPO_OK;
}

static int check_x(const char *op, const empo_tensor *x) {
    if (!x) return empo_fail(EMPO_E_ARG, "%s: tensor is NULL", op);
    return EMPO_OK;
}

/* Resolves one -1 and checks the element count. */
static int infer_shape(const char *op, const empo_tensor *x, int ndim, const int64_t *shape, int64_t *out) {
    if (ndim < 0 || ndim > EMPO_MAX_DIMS || (ndim && !shape))
        return empo_fail(EMPO_E_ARG, "%s: bad number of dims %d", op, ndim);
    int infer = -1;
    int64_t known = 1, numel = empo_tensor_numel(x);
    for (int d = 0; d < ndim; d++) {
        out[d] = shape[d];
        if (shape[d] == -1) {
            if (infer >= 0) return empo_fail(EMPO_E_SHAPE, "%s: only one dimension can be -1", op);
            infer = d;
        } else if (shape[d] < 0) {
            return empo_fail(EMPO_E_SHAPE, "%s: negative size %lld", op, (long long)shape[d]);
        } else {
            known *= shape[d];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel % known)
            goto bad;
        out[infer] = numel / known;
    } else if (known != numel) {
        goto bad;
    }
    return EMPO_OK;
bad:;
    char b[160];
    return empo_fail(EMPO_E_SHAPE, "%s: cannot reshape %s (%lld elements) to %s", op, empo_desc(x),
                     (long long)numel, empo_shape_str(ndim, shape, b, sizeof b));
}

int empo_view(empo_tensor **out, empo_tensor *x, int ndim, const int64_t *shape) {
    int64_t s[EMPO_MAX_DIMS];
    EMPO_TRY(check_x("view", x));
    EMPO_TRY(infer_shape("view", x, ndim, shape, s));
    return make_view(out, "view", x, V_RESHAPE, NULL, 0, ndim, s);
}

int empo_reshape(empo_tensor **out, empo_tensor *x, int ndim, const int64_t *shape) {
    int64_t s[EMPO_MAX_DIMS], st[EMPO_MAX_DIMS];
    EMPO_TRY(check_x("reshape", x));
    EMPO_TRY(infer_shape("reshape", x, ndim, shape, s));
    geom in = geom_of(x);
    if (empo_tensor_numel(x) == 0 || reshape_strides(&in, ndim, s, st) == EMPO_OK)
        return make_view(out, "reshape", x, V_RESHAPE, NULL, 0, ndim, s);
    empo_tensor *c = NULL;
    EMPO_TRY(empo_contiguous(&c, x));
    int r = make_view(out, "reshape", c, V_RESHAPE, NULL, 0, ndim, s);
    empo_tensor_release(c);
    return r;
}

int empo_permute(empo_tensor **out, empo_tensor *x, int ndim, const int *dims) {
    EMPO_TRY(check_x("permute", x));
    if (ndim != x->ndim || (ndim && !dims))
        return empo_fail(EMPO_E_ARG, "permute: %d dims given for %s", ndim, empo_desc(x));
    int64_t packed = 0;
    int seen = 0;
    for (int d = 0; d < ndim; d++) {
        int k;
        EMPO_TRY(empo_wrap_dim("permute", dims[d], ndim, &k));
        if (seen & (1 << k)) return empo_fail(EMPO_E_ARG, "permute: dim %d repeated", k);
        seen |= 1 << k;
        packed |= (int64_t)k << (4 * d);
    }
    return make_view(out, "permute", x, V_PERMUTE, &packed, 1, x->ndim, x->shape);
}

int empo_transpose(empo_tensor **out, empo_tensor *x, int dim0, int dim1) {
    EMPO_TRY(check_x("transpose", x));
    int a, b, dims[EMPO_MAX_DIMS];
    EMPO_TRY(empo_wrap_dim("transpose", dim0, x->ndim, &a));
    EMPO_TRY(empo_wrap_dim("transpose", dim1, x->ndim, &b));
    if (x->ndim == 0) { empo_tensor_retain(x); *out = x; return EMPO_OK; }
    for (int d = 0; d < x->ndim; d++) dims[d] = d;
    dims[a] = b;
    dims[b] = a;
    return empo_permute(out, x, x->ndim, dims);
}

int empo_slice(empo_tensor **out, empo_tensor *x, int dim, int64_t start, int64_t stop, int64_t step) {
    EMPO_TRY(check_x("slice", x));
    int d;
    EMPO_TRY(empo_wrap_dim("slice", dim, x->ndim, &d));
    if (x->ndim == 0) return empo_fail(EMPO_E_SHAPE, "slice: cannot slice a 0-d tensor");
    if (step < 1) return empo_fail(EMPO_E_ARG, "slice: step %lld must be >= 1", (long long)step);
    int64_t n = x->shape[d];
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (start < 0) start = 0;
    if (stop > n) stop = n;
    if (start > n) start = n;
    int64_t len = stop > start ? (stop - start + step - 1) / step : 0;
    int64_t shape[EMPO_MAX_DIMS], p[3] = {d, start, step};
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = len;
    return make_view(out, "slice", x, V_SLICE, p, 3, x->ndim, shape);
}

int empo_narrow(empo_tensor **out, empo_tensor *x, int dim, int64_t start, int64_t length) {
    EMPO_TRY(check_x("narrow", x));
    int d;
    EMPO_TRY(empo_wrap_dim("narrow", dim, x->ndim, &d));
    if (x->ndim == 0) return empo_fail(EMPO_E_SHAPE, "narrow: cannot narrow a 0-d tensor");
    if (start < 0 || length < 0 || start + length > x->shape[d])
        return empo_fail(EMPO_E_INDEX, "narrow: range [%lld, %lld) outside dim %d of %s", (long long)start,
                         (long long)(start + length), d, empo_desc(x));
    int64_t shape[EMPO_MAX_DIMS], p[3] = {d, start, 1};
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = length;
    return make_view(out, "narrow", x, V_SLICE, p, 3, x->ndim, shape);
}

int empo_select(empo_tensor **out, empo_tensor *x, int dim, int64_t index) {
    EMPO_TRY(check_x("select", x));
    int d;
    EMPO_TRY(empo_wrap_dim("select", dim, x->ndim, &d));
    if (x->ndim == 0) return empo_fail(EMPO_E_SHAPE, "select: cannot index a 0-d tensor");
    if (index < 0) index += x->shape[d];
    if (index < 0 || index >= x->shape[d])
        return empo_fail(EMPO_E_INDEX, "select: index %lld out of range for dim %d of %s", (long long)index, d,
                         empo_desc(x));
    int64_t shape[EMPO_MAX_DIMS], p[2] = {d, index};
    int k = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d) shape[k++] = x->shape[i];
    return make_view(out, "select", x, V_SELECT, p, 2, x->ndim - 1, shape);
}

int empo_expand(empo_tensor **out, empo_tensor *x, int ndim, const int64_t *shape) {
    EMPO_TRY(check_x("expand", x));
    if (ndim < x->ndim || ndim > EMPO_MAX_DIMS || (ndim && !shape))
        return empo_fail(EMPO_E_SHAPE, "expand: cannot expand %s to %d dims", empo_desc(x), ndim);
    int64_t s[EMPO_MAX_DIMS];
    int lead = ndim - x->ndim;
    for (int d = 0; d < ndim; d++) {
        int64_t have = d < lead ? 1 : x->shape[d - lead];
        s[d] = shape[d] == -1 ? have : shape[d];
        if (have != 1 && have != s[d]) {
            char b[160];
            return empo_fail(EMPO_E_SHAPE, "expand: cannot expand %s to %s (dim %d: %lld vs %lld)", empo_desc(x),
                             empo_shape_str(ndim, shape, b, sizeof b), d, (long long)have, (long long)s[d]);
        }
    }
    return make_view(out, "expand", x, V_EXPAND, NULL, 0, ndim, s);
}

int empo_unsqueeze(empo_tensor **out, empo_tensor *x, int dim) {
    EMPO_TRY(check_x("unsqueeze", x));
    if (x->ndim >= EMPO_MAX_DIMS) return empo_fail(EMPO_E_SHAPE, "unsqueeze: %s already has the most dims", empo_desc(x));
    int d;
    EMPO_TRY(empo_wrap_dim("unsqueeze", dim, x->ndim + 1, &d));
    int64_t s[EMPO_MAX_DIMS];
    for (int i = 0, k = 0; i <= x->ndim; i++) s[i] = i == d ? 1 : x->shape[k++];
    return empo_view(out, x, x->ndim + 1, s);
}

int empo_squeeze(empo_tensor **out, empo_tensor *x, int dim) {
    EMPO_TRY(check_x("squeeze", x));
    int d;
    EMPO_TRY(empo_wrap_dim("squeeze", dim, x->ndim, &d));
    if (x->ndim == 0 || x->shape[d] != 1) { empo_tensor_retain(x); *out = x; return EMPO_OK; }
    int64_t s[EMPO_MAX_DIMS];
    for (int i = 0, k = 0; i < x->ndim; i++)
        if (i != d) s[k++] = x->shape[i];
    return make_view(out, "squeeze", x, V_RESHAPE, NULL, 0, x->ndim - 1, s);
}

/* ---- copies ---- */
static int copy_backward(empo_node *node, empo_tensor *grad_out, empo_tensor **gin) {
    empo_tensor_retain(grad_out);
    gin[0] = grad_out;
    return EMPO_OK;
}

int empo_clone(empo_tensor **out, empo_tensor *x) {
    EMPO_TRY(check_x("clone", x));
    empo_tensor *y = NULL;
    EMPO_TRY(empo_copy_as(&y, x, x->dtype));
    int st;
    empo_node_record("clone", copy_backward, y, 1, &x, &st);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

int empo_contiguous(empo_tensor **out, empo_tensor *x) {
    EMPO_TRY(check_x("contiguous", x));
    if (empo_tensor_is_contiguous(x)) { empo_tensor_retain(x); *out = x; return EMPO_OK; }
    return empo_clone(out, x);
}

int empo_to_dtype(empo_tensor **out, empo_tensor *x, int dtype) {
    EMPO_TRY(check_x("to", x));
    if (empo_dtype_size(dtype) == 0) return empo_fail(EMPO_E_DTYPE, "to: unknown dtype %d", dtype);
    if (dtype == x->dtype) return empo_clone(out, x);
    if (x->requires_grad && empo_grad_is_enabled())
        return empo_fail(EMPO_E_DTYPE, "to: %s requires grad; converting it to %s would cut the graph (detach first)",
                         empo_desc(x), empo_dtype_name(dtype));
    return empo_copy_as(out, x, dtype);
}
