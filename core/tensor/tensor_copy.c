/* tensor_copy.c — strided copies: copy_ (with broadcasting and dtype conversion),
 * contiguous copies without autograd. */
#include <stdio.h>
#include <string.h>
#include "tensor/tensor_internal.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

typedef struct {
    char *dst;
    const char *src;
    int ddt, sdt, outer_nd;
    const int64_t *dstr, *sstr, *shape;
    int64_t inner, ds, ss;
} copy_job;

static void copy_rows(void *ctx, int64_t lo, int64_t hi) {
    copy_job *j = ctx;
    int dsz = empo_dtype_size(j->ddt), ssz = empo_dtype_size(j->sdt);
    for (int64_t r = lo; r < hi; r++) {
        int64_t doff = empo_linear_offset(r, j->outer_nd, j->shape, j->dstr);
        int64_t soff = empo_linear_offset(r, j->outer_nd, j->shape, j->sstr);
        if (j->ddt == EMPO_F32 && j->sdt == EMPO_F32) {
            float *d = (float *)j->dst + doff;
            const float *s = (const float *)j->src + soff;
            if (j->ds == 1 && j->ss == 1) memcpy(d, s, (size_t)j->inner * 4);
            else for (int64_t i = 0; i < j->inner; i++) d[i * j->ds] = s[i * j->ss];
        } else if (j->ddt == j->sdt && j->ds == 1 && j->ss == 1) {
            memcpy(j->dst + doff * dsz, j->src + soff * ssz, (size_t)(j->inner * dsz));
        } else {
            for (int64_t i = 0; i < j->inner; i++)
                empo_store_element(j->dst, j->ddt, doff + i * j->ds,
                                   empo_load_element(j->src, j->sdt, soff + i * j->ss));
        }
    }
}

/* dst[...] = src[...] over shape; src strides may be 0 (broadcast). Rows of
 * the innermost dim are copied in parallel when the copy is large. */
static void strided_copy(char *dst, int ddt, const int64_t *dstr, const char *src, int sdt,
                         const int64_t *sstr, int ndim, const int64_t *shape) {
    int64_t numel = empo_shape_numel(ndim, shape);
    if (numel == 0) return;
    copy_job j = {.dst = dst, .src = src, .ddt = ddt, .sdt = sdt, .outer_nd = ndim ? ndim - 1 : 0, .dstr = dstr,
                  .sstr = sstr, .shape = shape, .inner = ndim ? shape[ndim - 1] : 1,
                  .ds = ndim ? dstr[ndim - 1] : 1, .ss = ndim ? sstr[ndim - 1] : 1};
    empo_parallel_for(numel / j.inner, numel, copy_rows, &j);
}

int empo_tensor_copy_(empo_tensor *dst, const empo_tensor *src) {
    if (!dst || !src) return empo_fail(EMPO_E_ARG, "copy_: NULL tensor");
    if (empo_tensor_device(dst) != EMPO_CPU) return empo_tensor_copy_to_device_(dst, src);
    if (empo_tensor_device(src) != EMPO_CPU) {   /* a device source comes down first */
        empo_tensor *host = NULL;
        EMPO_TRY(empo_to_host_nograd(&host, src));
        int st = empo_tensor_copy_(dst, host);
        empo_tensor_release(host);
        return st;
    }
    int nd;
    int64_t shape[EMPO_MAX_DIMS], sstr[EMPO_MAX_DIMS];
    EMPO_TRY(empo_broadcast_shapes("copy_", dst->ndim, dst->shape, src->ndim, src->shape, &nd, shape));
    if (nd != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)nd) != 0)
        return empo_fail(EMPO_E_SHAPE, "copy_: source %s does not broadcast to destination %s", empo_desc(src),
                         empo_desc(dst));
    empo_broadcast_strides(src, nd, shape, sstr);
    strided_copy(empo_tensor_data(dst), dst->dtype, dst->strides, empo_tensor_data(src), src->dtype, sstr, nd,
                 shape);
    return EMPO_OK;
}

/* On a device: the layout by its strided-copy kernel, then a conversion
 * (when the dtype changes) by its convert kernel. */
static int device_copy_as(empo_tensor **out, const empo_tensor *x, int dtype) {
    const int device = empo_tensor_device(x);
    const empo_kernel_table *K = empo_kernels_device(device);
    empo_tensor *y = empo_tensor_new_on(x->ndim, x->shape, dtype, device), *xc = NULL;
    if (!y) return EMPO_E_NOMEM;
    if (dtype != x->dtype && empo_tensor_is_contiguous(x)) {
        K->convert(empo_tensor_data(y), dtype, empo_tensor_data(x), x->dtype, empo_tensor_numel(x));
        *out = y;
        return EMPO_OK;
    }
    if (dtype != x->dtype && !(xc = empo_tensor_new_on(x->ndim, x->shape, x->dtype, device))) {
        empo_tensor_release(y);
        return EMPO_E_NOMEM;
    }
    empo_tensor *dst = xc ? xc : y;   /* the layout first, in x's dtype */
    empo_strided_copy c = {.ndim = x->ndim, .esize = empo_dtype_size(x->dtype)};
    for (int d = 0; d < x->ndim; d++)
        c.shape[d] = x->shape[d], c.dst_strides[d] = dst->strides[d], c.src_strides[d] = x->strides[d];
    K->copy_strided(empo_tensor_data(dst), empo_tensor_data(x), &c);
    if (xc) K->convert(empo_tensor_data(y), dtype, empo_tensor_data(xc), x->dtype, empo_tensor_numel(x));
    empo_tensor_release(xc);
    *out = y;
    return EMPO_OK;
}

/* A contiguous copy of x converted to dtype (no autograd). */
int empo_copy_as(empo_tensor **out, const empo_tensor *x, int dtype) {
    if (empo_tensor_device(x) != EMPO_CPU) return device_copy_as(out, x, dtype);
    empo_tensor *y = empo_tensor_new(x->ndim, x->shape, dtype);
    if (!y) return EMPO_E_NOMEM;
    if (empo_tensor_is_contiguous(x))
        empo_convert(empo_tensor_data(y), dtype, empo_tensor_data(x), x->dtype, empo_tensor_numel(x));
    else
        strided_copy(empo_tensor_data(y), dtype, y->strides, empo_tensor_data(x), x->dtype, x->strides,
                     x->ndim, x->shape);
    *out = y;
    return EMPO_OK;
}

int empo_contiguous_nograd(empo_tensor **out, empo_tensor *x) {
    if (empo_tensor_is_contiguous(x)) {
        empo_tensor_retain(x);
        *out = x;
        return EMPO_OK;
    }
    return empo_copy_as(out, x, x->dtype);
}
