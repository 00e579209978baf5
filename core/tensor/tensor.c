/* tensor.c — tensor handles: creation, lifetime, inspection, element
 * access, fill/copy, and the shape helpers every op uses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/tensor_internal.h"
#include "kernels/kernels.h"

void empo_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d] > 0 ? shape[d] : 1;
    }
}

int64_t empo_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

empo_tensor *empo_tensor_alloc_handle(int ndim, const int64_t *shape, int dtype) {
    empo_tensor *t = calloc(1, sizeof *t);
    if (!t) { empo_fail(EMPO_E_NOMEM, "tensor: out of memory"); return NULL; }
    t->refcount = 1;
    t->ndim = ndim;
    t->dtype = dtype;
    if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    empo_contiguous_strides(ndim, t->shape, t->strides);
    empo_count_tensor(1);
    return t;
}

static int check_shape(const char *op, int ndim, const int64_t *shape, int dtype) {
    if (ndim < 0 || ndim > EMPO_MAX_DIMS)
        return empo_fail(EMPO_E_ARG, "%s: %d dims given, at most %d supported", op, ndim, EMPO_MAX_DIMS);
    if (ndim > 0 && !shape) return empo_fail(EMPO_E_ARG, "%s: shape is NULL", op);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0)
            return empo_fail(EMPO_E_ARG, "%s: size %lld of dim %d is negative", op, (long long)shape[d], d);
    if (empo_dtype_size(dtype) == 0) return empo_fail(EMPO_E_DTYPE, "%s: unknown dtype %d", op, dtype);
    return EMPO_OK;
}

empo_tensor *empo_tensor_new(int ndim, const int64_t *shape, int dtype) {
    if (check_shape("tensor", ndim, shape, dtype) != EMPO_OK) return NULL;
    empo_tensor *t = empo_tensor_alloc_handle(ndim, shape, dtype);
    if (!t) return NULL;
    size_t nbytes = (size_t)empo_shape_numel(ndim, shape) * (size_t)empo_dtype_size(dtype);
    t->storage = empo_storage_new(nbytes, EMPO_CPU);
    if (!t->storage) { empo_tensor_release(t); return NULL; }
    return t;
}

empo_tensor *empo_tensor_new_like(const empo_tensor *x, int dtype) {
    return empo_tensor_new_on(x->ndim, x->shape, dtype, empo_tensor_device(x));
}

empo_tensor *empo_tensor_view_of(const empo_tensor *x, int ndim, const int64_t *shape,
                                 const int64_t *strides, int64_t offset) {
    empo_tensor *t = empo_tensor_alloc_handle(ndim, shape, x->dtype);
    if (!t) return NULL;
    if (ndim) memcpy(t->strides, strides, sizeof(int64_t) * (size_t)ndim);
    t->offset = offset;
    t->storage = x->storage;
    empo_storage_retain(x->storage);
    return t;
}

int empo_tensor_empty(empo_tensor **out, int ndim, const int64_t *shape, int dtype) {
    EMPO_TRY(check_shape("empty", ndim, shape, dtype));
    *out = empo_tensor_new(ndim, shape, dtype);
    return *out ? EMPO_OK : EMPO_E_NOMEM;
}

int empo_tensor_empty_on(empo_tensor **out, int ndim, const int64_t *shape, int dtype, int device) {
    if (device == EMPO_CPU) return empo_tensor_empty(out, ndim, shape, dtype);
    EMPO_TRY(check_shape("empty", ndim, shape, dtype));
    if (device != EMPO_CUDA || !empo_kernels_device(device))
        return empo_fail(EMPO_E_DEVICE, "empty: device %d cannot be used: %s", device,
                         device == EMPO_CUDA ? empo_kernels_device_why() : "unknown device");
    *out = empo_tensor_new_on(ndim, shape, dtype, device);
    if (!*out)
        return empo_fail(EMPO_E_NOMEM, "empty: out of %s memory for %lld elements", empo_device_name(device),
                         (long long)empo_shape_numel(ndim, shape));
    return EMPO_OK;
}

int empo_tensor_full(empo_tensor **out, int ndim, const int64_t *shape, int dtype, double value) {
    EMPO_TRY(empo_tensor_empty(out, ndim, shape, dtype));
    return empo_tensor_fill_(*out, value);
}

int empo_tensor_zeros(empo_tensor **out, int ndim, const int64_t *shape, int dtype) {
    EMPO_TRY(empo_tensor_empty(out, ndim, shape, dtype));
    memset(empo_tensor_data(*out), 0, (size_t)empo_tensor_numel(*out) * (size_t)empo_dtype_size(dtype));
    return EMPO_OK;
}

int empo_tensor_from_buffer(empo_tensor **out, int ndim, const int64_t *shape, int dtype,
                            const void *data, int src_dtype) {
    if (!data) return empo_fail(EMPO_E_ARG, "from_buffer: data is NULL");
    if (empo_dtype_size(src_dtype) == 0) return empo_fail(EMPO_E_DTYPE, "from_buffer: unknown source dtype %d", src_dtype);
    EMPO_TRY(empo_tensor_empty(out, ndim, shape, dtype));
    empo_convert(empo_tensor_data(*out), dtype, data, src_dtype, empo_tensor_numel(*out));
    return EMPO_OK;
}

int empo_tensor_arange(empo_tensor **out, int64_t n, int dtype) {
    if (n < 0) return empo_fail(EMPO_E_ARG, "arange: n = %lld is negative", (long long)n);
    EMPO_TRY(empo_tensor_empty(out, 1, &n, dtype));
    void *p = empo_tensor_data(*out);
    for (int64_t i = 0; i < n; i++) empo_store_element(p, dtype, i, (double)i);
    return EMPO_OK;
}

void empo_tensor_retain(empo_tensor *t) {
    if (t) __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
}

/* Freeing a long graph would recurse tensor -> node -> tensor ... once per
 * op; instead the outermost release drains a worklist of dead tensors. */
static _Thread_local struct {
    empo_tensor **items;
    int64_t n, cap;
    int draining;
} dead;

void empo_node_ref_release(empo_node_ref *r) {
    if (r && --r->refcount == 0) r->destroy(r);
}

static void destroy(empo_tensor *t) {
    empo_storage_release(t->storage);
    empo_tensor_release(t->grad);
    if (t->grad_fn) empo_node_ref_release((empo_node_ref *)t->grad_fn);
    empo_count_tensor(-1);
    free(t);
}

void empo_tensor_release(empo_tensor *t) {
    if (!t || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (dead.draining) {
        if (dead.n == dead.cap) {
            int64_t cap = dead.cap ? dead.cap * 2 : 256;
            empo_tensor **items = realloc(dead.items, sizeof *items * (size_t)cap);
            if (!items) { destroy(t); return; }   /* fall back to recursion */
            dead.items = items;
            dead.cap = cap;
        }
        dead.items[dead.n++] = t;
        return;
    }
    dead.draining = 1;
    destroy(t);
    while (dead.n) destroy(dead.items[--dead.n]);
    dead.draining = 0;
}

/* ---- inspection ---- */
int empo_tensor_ndim(const empo_tensor *t) { return t->ndim; }

int64_t empo_tensor_size(const empo_tensor *t, int dim) {
    if (dim < 0) dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->shape[dim] : -1;
}

int64_t empo_tensor_stride(const empo_tensor *t, int dim) {
    if (dim < 0) dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->strides[dim] : -1;
}

int64_t empo_tensor_offset(const empo_tensor *t) { return t->offset; }
int64_t empo_tensor_numel(const empo_tensor *t) { return empo_shape_numel(t->ndim, t->shape); }
int empo_tensor_dtype(const empo_tensor *t) { return t->dtype; }
int empo_tensor_device(const empo_tensor *t) { return t->storage ? t->storage->device : EMPO_CPU; }

int empo_tensor_is_contiguous(const empo_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != s) return 0;
        s *= t->shape[d];
    }
    return 1;
}

void *empo_tensor_data(const empo_tensor *t) {
    return (char *)t->storage->data + t->offset * empo_dtype_size(t->dtype);
}

int empo_tensor_shares_storage(const empo_tensor *a, const empo_tensor *b) {
    return a && b && a->storage == b->storage;
}

const char *empo_shape_str(int ndim, const int64_t *shape, char *buf, int buflen) {
    int n = snprintf(buf, (size_t)buflen, "[");
    for (int d = 0; d < ndim && n < buflen; d++)
        n += snprintf(buf + n, (size_t)(buflen - n), d ? " x %lld" : "%lld", (long long)shape[d]);
    if (n < buflen) snprintf(buf + n, (size_t)(buflen - n), "]");
    return buf;
}

const char *empo_tensor_describe(const empo_tensor *t, char *buf, int buflen) {
    if (!t) { snprintf(buf, (size_t)buflen, "(null)"); return buf; }
    char shape[160];
    const int on_cpu = empo_tensor_device(t) == EMPO_CPU;   /* the device is named when it is not the cpu */
    snprintf(buf, (size_t)buflen, "%s %s%s%s", empo_shape_str(t->ndim, t->shape, shape, sizeof shape),
             empo_dtype_name(t->dtype), on_cpu ? "" : " ", on_cpu ? "" : empo_device_name(empo_tensor_device(t)));
    return buf;
}

const char *empo_desc(const empo_tensor *t) {
    static _Thread_local char ring[6][192];
    static _Thread_local int next;
    char *buf = ring[next];
    next = (next + 1) % 6;
    return empo_tensor_describe(t, buf, 192);
}

static int check_dtype(const char *op, const char *arg, const empo_tensor *t, unsigned dtype_mask) {
    if (!(dtype_mask & EMPO_DT(t->dtype))) {
        char want[64] = "";
        for (int d = 0; d <= EMPO_U8; d++)
            if (dtype_mask & EMPO_DT(d)) {
                if (want[0]) strcat(want, "/");
                strcat(want, empo_dtype_name(d));
            }
        return empo_fail(EMPO_E_DTYPE, "%s: %s %s has dtype %s, expected %s", op, arg, empo_desc(t),
                         empo_dtype_name(t->dtype), want);
    }
    return EMPO_OK;
}

int empo_check_tensor(const char *op, const char *arg, const empo_tensor *t, unsigned dtype_mask) {
    if (!t) return empo_fail(EMPO_E_ARG, "%s: %s is missing (NULL tensor)", op, arg);
    if (empo_tensor_device(t) != EMPO_CPU)
        return empo_fail(EMPO_E_DEVICE, "%s: %s %s is on %s; %s runs on the cpu only for now (t:cpu() first)", op,
                         arg, empo_desc(t), empo_device_name(empo_tensor_device(t)), op);
    return check_dtype(op, arg, t, dtype_mask);
}

int empo_check_input(const char *op, const char *arg, const empo_tensor *t, unsigned dtype_mask,
                     const char *first_arg, const empo_tensor *first) {
    if (!t) return empo_fail(EMPO_E_ARG, "%s: %s is missing (NULL tensor)", op, arg);
    if (first && empo_tensor_device(t) != empo_tensor_device(first))
        return empo_fail(EMPO_E_DEVICE, "%s: %s %s is on %s but %s %s is on %s; an op takes tensors of one device "
                         "(t:to('%s'))", op, arg, empo_desc(t), empo_device_name(empo_tensor_device(t)), first_arg,
                         empo_desc(first), empo_device_name(empo_tensor_device(first)),
                         empo_device_name(empo_tensor_device(first)));
    return check_dtype(op, arg, t, dtype_mask);
}

int empo_wrap_dim(const char *op, int dim, int ndim, int *out) {
    int n = ndim > 0 ? ndim : 1;
    if (dim < -n || dim >= n)
        return empo_fail(EMPO_E_INDEX, "%s: dim %d out of range for a %d-d tensor (expected %d..%d)", op,
                         dim, ndim, -n, n - 1);
    *out = dim < 0 ? dim + n : dim;
    return EMPO_OK;
}

int empo_broadcast_shapes(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                          int *out_ndim, int64_t *out_shape) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t a = i < n - na ? 1 : sa[i - (n - na)];
        int64_t b = i < n - nb ? 1 : sb[i - (n - nb)];
        if (a != b && a != 1 && b != 1) {
            char ba[160], bb[160];
            return empo_fail(EMPO_E_SHAPE, "%s: shapes %s and %s cannot broadcast (dim %d: %lld vs %lld)", op,
                             empo_shape_str(na, sa, ba, sizeof ba), empo_shape_str(nb, sb, bb, sizeof bb), i,
                             (long long)a, (long long)b);
        }
        out_shape[i] = a == 1 ? b : a;
    }
    *out_ndim = n;
    return EMPO_OK;
}

void empo_broadcast_strides(const empo_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        if (i < lead) strides[i] = 0;
        else strides[i] = (t->shape[i - lead] == 1 && shape[i] != 1) ? 0 : t->strides[i - lead];
    }
}

double empo_tensor_get_flat(const empo_tensor *t, int64_t i) {
    int64_t off = empo_linear_offset(i, t->ndim, t->shape, t->strides);
    return empo_load_element(t->storage->data, t->dtype, t->offset + off);
}

int64_t empo_index_at(const empo_tensor *idx, int64_t flat) {
    int64_t off = idx->offset + empo_linear_offset(flat, idx->ndim, idx->shape, idx->strides);
    switch (idx->dtype) {
    case EMPO_I64: return ((const int64_t *)idx->storage->data)[off];
    case EMPO_I32: return ((const int32_t *)idx->storage->data)[off];
    default: return (int64_t)empo_load_element(idx->storage->data, idx->dtype, off);
    }
}

/* ---- element access ---- */
/* a device tensor's elements are read from a host copy */
static int read_from_host_copy(const empo_tensor *t, double *dst) {
    empo_tensor *host = NULL;
    EMPO_TRY(empo_to_host_nograd(&host, t));
    int st = empo_tensor_read_f64(host, dst);
    empo_tensor_release(host);
    return st;
}

int empo_tensor_read_f64(const empo_tensor *t, double *dst) {
    if (!t || !dst) return empo_fail(EMPO_E_ARG, "read_f64: NULL argument");
    if (empo_tensor_device(t) != EMPO_CPU) return read_from_host_copy(t, dst);
    int64_t n = empo_tensor_numel(t);
    if (empo_tensor_is_contiguous(t)) {
        empo_convert(dst, EMPO_F64, empo_tensor_data(t), t->dtype, n);
        return EMPO_OK;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = empo_tensor_get_flat(t, i);
    return EMPO_OK;
}

int empo_tensor_item(const empo_tensor *t, double *value) {
    if (!t) return empo_fail(EMPO_E_ARG, "item: NULL tensor");
    if (empo_tensor_numel(t) != 1)
        return empo_fail(EMPO_E_SHAPE, "item: tensor %s has %lld elements, expected exactly 1", empo_desc(t),
                         (long long)empo_tensor_numel(t));
    if (empo_tensor_device(t) != EMPO_CPU) return read_from_host_copy(t, value);
    *value = empo_tensor_get_flat(t, 0);
    return EMPO_OK;
}

static int element_offset(const char *op, const empo_tensor *t, const int64_t *index, int64_t *off) {
    *off = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (index[d] < 0 || index[d] >= t->shape[d])
            return empo_fail(EMPO_E_INDEX, "%s: index %lld out of range for dim %d of %s (expected 0..%lld)", op,
                             (long long)index[d], d, empo_desc(t), (long long)t->shape[d] - 1);
        *off += index[d] * t->strides[d];
    }
    return EMPO_OK;
}

int empo_tensor_get(const empo_tensor *t, const int64_t *index, double *value) {
    int64_t off;
    EMPO_TRY(element_offset("get", t, index, &off));
    if (empo_tensor_device(t) != EMPO_CPU) {
        empo_tensor *one = empo_tensor_view_of(t, 0, NULL, NULL, off);
        if (!one) return EMPO_E_NOMEM;
        int st = read_from_host_copy(one, value);
        empo_tensor_release(one);
        return st;
    }
    *value = empo_load_element(t->storage->data, t->dtype, off);
    return EMPO_OK;
}

/* Writes into a device tensor go through a host tensor of its shape, then
 * up in one copy; a view with gaps cannot be written that way yet. */
static int write_through_host(empo_tensor *t, const char *op, double fill, const empo_tensor *src) {
    if (!empo_tensor_is_contiguous(t))
        return empo_fail(EMPO_E_DEVICE, "%s: %s is a strided view on the device; only contiguous device "
                         "tensors can be written from the host", op, empo_desc(t));
    empo_tensor *host = empo_tensor_new(t->ndim, t->shape, t->dtype);
    if (!host) return EMPO_E_NOMEM;
    int st = src ? empo_tensor_copy_(host, src) : empo_tensor_fill_(host, fill);
    if (st == EMPO_OK) st = empo_upload_into(t, host);
    empo_tensor_release(host);
    return st;
}

/* the copy_ of tensor_copy.c for a destination on a device: from the same
 * device by its kernels (converted there first when the dtypes differ, then
 * one strided copy with src broadcast), from the host through a host tensor */
int empo_tensor_copy_to_device_(empo_tensor *dst, const empo_tensor *src) {
    if (empo_tensor_device(src) != empo_tensor_device(dst)) return write_through_host(dst, "copy_", 0.0, src);
    int nd;
    int64_t shape[EMPO_MAX_DIMS];
    EMPO_TRY(empo_broadcast_shapes("copy_", dst->ndim, dst->shape, src->ndim, src->shape, &nd, shape));
    if (nd != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)nd) != 0)
        return empo_fail(EMPO_E_SHAPE, "copy_: source %s does not broadcast to destination %s", empo_desc(src),
                         empo_desc(dst));
    empo_tensor *same = NULL;   /* src in dst's dtype */
    if (src->dtype == dst->dtype) empo_tensor_retain(same = (empo_tensor *)src);
    else EMPO_TRY(empo_copy_as(&same, src, dst->dtype));
    empo_strided_copy c = {.ndim = nd, .esize = empo_dtype_size(dst->dtype)};
    empo_broadcast_strides(same, nd, shape, c.src_strides);
    for (int d = 0; d < nd; d++) c.shape[d] = shape[d], c.dst_strides[d] = dst->strides[d];
    if (empo_tensor_numel(dst) > 0) empo_kernels_of(dst)->copy_strided(empo_tensor_data(dst), empo_tensor_data(same), &c);
    empo_tensor_release(same);
    return EMPO_OK;
}

int empo_tensor_set(empo_tensor *t, const int64_t *index, double value) {
    int64_t off;
    EMPO_TRY(element_offset("set", t, index, &off));
    if (empo_tensor_device(t) != EMPO_CPU) {
        empo_tensor *one = empo_tensor_view_of(t, 0, NULL, NULL, off);
        if (!one) return EMPO_E_NOMEM;
        int st = write_through_host(one, "set", value, NULL);
        empo_tensor_release(one);
        return st;
    }
    empo_store_element(t->storage->data, t->dtype, off, value);
    return EMPO_OK;
}

int empo_tensor_fill_(empo_tensor *t, double value) {
    if (!t) return empo_fail(EMPO_E_ARG, "fill_: NULL tensor");
    if (empo_tensor_device(t) != EMPO_CPU)   /* zeros are made on the device itself */
        return value == 0.0 && empo_tensor_is_contiguous(t) ? empo_device_zero(t)
                                                            : write_through_host(t, "fill_", value, NULL);
    int64_t n = empo_tensor_numel(t);
    if (t->dtype == EMPO_F32 && empo_tensor_is_contiguous(t)) {
        float *p = empo_tensor_data(t), v = (float)value;
        for (int64_t i = 0; i < n; i++) p[i] = v;
        return EMPO_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t off = t->offset + empo_linear_offset(i, t->ndim, t->shape, t->strides);
        empo_store_element(t->storage->data, t->dtype, off, value);
    }
    return EMPO_OK;
}
