/* op_fused.h — what the fused ops (op_fused_*.c) share: their tensors' data
 * as the kernels take it, and their gradients' allocation. Private to
 * core/ops/. */
#ifndef EMPO_OP_FUSED_H
#define EMPO_OP_FUSED_H
#include "autograd/autograd_internal.h"
#include "op_dispatch.h"

/* t's data as f32 (NULL for a NULL tensor: an absent optional input). */
static inline float *fdata(empo_tensor *t) { return t ? (float *)empo_tensor_data(t) : NULL; }

/* A new f32 tensor shaped like t, on t's device, when want is true, else NULL; *st is set
 * to EMPO_E_NOMEM when the allocation fails (and nothing is allocated once
 * it is not EMPO_OK). */
static inline empo_tensor *grad_like(const empo_tensor *t, int want, int *st) {
    if (!want || *st != EMPO_OK) return NULL;
    empo_tensor *g = empo_tensor_new_like(t, EMPO_F32);
    if (!g) *st = EMPO_E_NOMEM;
    return g;
}

#endif
