/* tensor_device.c — moving tensors between the host and a device (no
 * autograd; the `to` op in core/ops/op_device.c records it). Only bytes
 * move: the device's copies (kernels/device.h) do the transfer, and any
 * strided gathering happens on the host. */
#include <string.h>
#include "tensor/tensor_internal.h"
#include "kernels/kernels.h"

const char *empo_device_name(int device) {
    return device == EMPO_CPU ? "cpu" : (device == EMPO_CUDA ? "cuda" : "unknown device");
}

static const empo_device_api *device_api(int device) {
    const empo_kernel_table *k = empo_kernels_device(device);
    return k ? k->device : NULL;
}

empo_tensor *empo_tensor_new_on(int ndim, const int64_t *shape, int dtype, int device) {
    if (device == EMPO_CPU) return empo_tensor_new(ndim, shape, dtype);
    empo_tensor *t = empo_tensor_alloc_handle(ndim, shape, dtype);
    if (!t) return NULL;
    size_t nbytes = (size_t)empo_shape_numel(ndim, shape) * (size_t)empo_dtype_size(dtype);
    t->storage = empo_storage_new(nbytes, device);
    if (!t->storage) {
        empo_tensor_release(t);
        return NULL;
    }
    return t;
}

/* A contiguous host copy of device tensor x: the bytes its view spans come
 * down in one piece, then the host gathers the view from them. */
static int download(empo_tensor **out, const empo_tensor *x) {
    const int esize = empo_dtype_size(x->dtype);
    const int64_t n = empo_tensor_numel(x);
    if (n == 0) return (*out = empo_tensor_new(x->ndim, x->shape, x->dtype)) ? EMPO_OK : EMPO_E_NOMEM;
    int64_t lo = x->offset, hi = x->offset;
    for (int d = 0; d < x->ndim; d++) {
        int64_t reach = (x->shape[d] - 1) * x->strides[d];
        if (reach < 0) lo += reach;
        else hi += reach;
    }
    empo_tensor *span = empo_tensor_new(1, (int64_t[]){hi - lo + 1}, x->dtype);
    if (!span) return EMPO_E_NOMEM;
    const empo_device_api *dev = device_api(x->storage->device);
    if (dev->download(span->storage->data, (char *)x->storage->data + lo * esize, (size_t)((hi - lo + 1) * esize))) {
        empo_tensor_release(span);
        return empo_fail(EMPO_E_DEVICE, "to cpu: copying %s from the device failed: %s", empo_desc(x),
                         dev->last_error());
    }
    empo_tensor *view = empo_tensor_view_of(span, x->ndim, x->shape, x->strides, x->offset - lo);
    empo_tensor_release(span);
    if (!view) return EMPO_E_NOMEM;
    int st = empo_contiguous_nograd(out, view);
    empo_tensor_release(view);
    return st;
}

int empo_upload_into(empo_tensor *dst, const empo_tensor *host) {
    const empo_device_api *dev = device_api(empo_tensor_device(dst));
    size_t nbytes = (size_t)empo_tensor_numel(dst) * (size_t)empo_dtype_size(dst->dtype);
    if (nbytes && dev->upload(empo_tensor_data(dst), empo_tensor_data(host), nbytes))
        return empo_fail(EMPO_E_DEVICE, "copying %s to %s failed: %s", empo_desc(host),
                         empo_device_name(empo_tensor_device(dst)), dev->last_error());
    return EMPO_OK;
}

int empo_device_zero(empo_tensor *t) {
    const empo_device_api *dev = device_api(empo_tensor_device(t));
    size_t nbytes = (size_t)empo_tensor_numel(t) * (size_t)empo_dtype_size(t->dtype);
    if (nbytes && dev->zero(empo_tensor_data(t), nbytes))
        return empo_fail(EMPO_E_DEVICE, "zeroing %s failed: %s", empo_desc(t), dev->last_error());
    return EMPO_OK;
}

static int upload(empo_tensor **out, empo_tensor *x, int device) {
    if (!device_api(device))
        return empo_fail(EMPO_E_DEVICE, "to %s: %s", empo_device_name(device), empo_kernels_device_why());
    empo_tensor *host = NULL;
    EMPO_TRY(empo_contiguous_nograd(&host, x));
    empo_tensor *y = empo_tensor_new_on(x->ndim, x->shape, x->dtype, device);
    int st = y ? empo_upload_into(y, host) : EMPO_E_NOMEM;
    empo_tensor_release(host);
    return empo_tensor_handover(out, y, st);
}

int empo_to_device_nograd(empo_tensor **out, empo_tensor *x, int device) {
    const int from = empo_tensor_device(x);
    if (device != EMPO_CPU && device != EMPO_CUDA)
        return empo_fail(EMPO_E_DEVICE, "to: device %d is not one empo knows (cpu, cuda)", device);
    if (from == device) {
        empo_tensor_retain(x);
        *out = x;
        return EMPO_OK;
    }
    if (device == EMPO_CPU) return download(out, x);
    if (from != EMPO_CPU)
        return empo_fail(EMPO_E_DEVICE, "to %s: %s is on %s; copies between devices go through the cpu",
                         empo_device_name(device), empo_desc(x), empo_device_name(from));
    return upload(out, x, device);
}

int empo_to_host_nograd(empo_tensor **out, const empo_tensor *x) {
    if (empo_tensor_device(x) == EMPO_CPU) return empo_contiguous_nograd(out, (empo_tensor *)x);
    return download(out, x);
}
