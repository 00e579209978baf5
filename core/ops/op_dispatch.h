/* op_dispatch.h — which kernels an op runs: those of the device its
 * tensors live on (the CPU table chosen by ISA, or a device's table).
 * Private to core/ops/. */
#ifndef EMPO_OP_DISPATCH_H
#define EMPO_OP_DISPATCH_H
#include "tensor/tensor_internal.h"
#include "kernels/kernels.h"

static inline const empo_kernel_table *empo_kernels_of(const empo_tensor *t) {
    const int device = empo_tensor_device(t);
    return device == EMPO_CPU ? empo_kernels() : empo_kernels_device(device);
}
static inline int empo_on_device(const empo_tensor *t) { return empo_tensor_device(t) != EMPO_CPU; }
#endif
