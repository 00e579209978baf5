/* op_dispatch.h — which kernels an op runs: those of the device its
 * tensors live on (the CPU table chosen by ISA, or a device's table).
 * Private to core/ops/. */
#ifndef EMPO_OP_DISPATCH_H
#define EMPO_OP_DISPATCH_H
#include "tensor/tensor_internal.h"
#include "kernels/kernels.h"

/* empo_kernels_of(t), empo_on_device(t): tensor/tensor_internal.h */

/* An index tensor (positions, ids, a mask) on the host, where the ops
 * check and assemble it whatever device it lives on: a contiguous copy of
 * a device tensor, t contiguous on the CPU (itself when it already is),
 * NULL for NULL. */
static inline int index_on_host(empo_tensor **out, empo_tensor *t) {
    if (!t) {
        *out = NULL;
        return EMPO_OK;
    }
    return empo_to_host_nograd(out, t);
}

/* *t (a host tensor the op assembled) replaced by its copy on like's
 * device; left as it is when like is on the CPU */
static inline int to_device_of(empo_tensor **t, const empo_tensor *like) {
    if (!*t || !empo_on_device(like)) return EMPO_OK;
    empo_tensor *d = NULL;
    int st = empo_to_device_nograd(&d, *t, empo_tensor_device(like));
    empo_tensor_release(*t);
    *t = d;
    return st;
}
/* t broadcast to y's shape, contiguous, on t's device (a new reference to t
 * when it already is that): what a device kernel that reads flat arrays
 * needs of a broadcast operand (op_elementwise.c) */
int empo_expand_on_device(empo_tensor **out, const empo_tensor *t, const empo_tensor *y);

#endif
