/* op_fused_norm.c — the RMSNorm and SwiGLU ops (f32): validation, dispatch
 * to the fast or reference kernels of kernels/fused.h, and their autograd
 * nodes. The arithmetic lives in kernels/cpu/fused_norm.c and
 * kernels/ref/fused_norm.c. */
#include <math.h>
#include <string.h>
#include "op_fused.h"
#include "kernels/kernels.h"

/* A new f32 tensor shaped like t when want is true, else NULL; *st is set
 * to EMPO_E_NOMEM when the allocation fails. */
/* ---- rmsnorm ---- */

/* saved: 0 = x (contiguous), 1 = weight (contiguous), 2 = rstd [N] */
static int rmsnorm_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *x = node->saved[0], *w = node->saved[1], *rstd = node->saved[2];
    int st = EMPO_OK;
    empo_tensor *dx = grad_like(x, node->inputs[0] != NULL, &st);
    empo_tensor *dw = grad_like(w, node->inputs[1] != NULL, &st);
    if (st != EMPO_OK) {
        empo_tensor_release(dx);
        empo_tensor_release(dw);
        return st;
    }
    empo_kernels_of(g)->rmsnorm_backward(fdata(dx), fdata(dw), fdata(g), fdata(x), fdata(w), fdata(rstd), rstd->shape[0],
                                     w->shape[0]);
    gin[0] = dx;
    gin[1] = dw;
    return EMPO_OK;
}

static int rmsnorm_check(empo_tensor *x, empo_tensor *weight, double eps) {
    EMPO_TRY(empo_check_input("rmsnorm", "x", x, EMPO_DT_FLOAT, "x", x));
    EMPO_TRY(empo_check_input("rmsnorm", "weight", weight, EMPO_DT_FLOAT, "x", x));
    if (x->ndim < 1)
        return empo_fail(EMPO_E_SHAPE, "rmsnorm: x %s: expected at least one dim [..., D]", empo_desc(x));
    const int64_t D = x->shape[x->ndim - 1];
    if (weight->ndim != 1 || weight->shape[0] != D)
        return empo_fail(EMPO_E_SHAPE, "rmsnorm: x %s and weight %s: weight must be [%lld] (the last dim of x)",
                         empo_desc(x), empo_desc(weight), (long long)D);
    if (!(eps >= 0.0) || !isfinite(eps))
        return empo_fail(EMPO_E_ARG, "rmsnorm: eps %g must be finite and >= 0", eps);
    return EMPO_OK;
}

int empo_rmsnorm(empo_tensor **out, empo_tensor *x, empo_tensor *weight, double eps) {
    EMPO_TRY(rmsnorm_check(x, weight, eps));
    const int64_t D = weight->shape[0], N = D > 0 ? empo_tensor_numel(x) / D : 0;
    empo_tensor *xc = NULL, *wc = NULL, *y = NULL, *rstd = NULL;
    int st = empo_contiguous_nograd(&xc, x);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&wc, weight);
    if (st == EMPO_OK && !(y = empo_tensor_new_like(x, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && !(rstd = empo_tensor_new_on(1, &N, EMPO_F32, empo_tensor_device(x)))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        empo_kernels_of(x)->rmsnorm_forward(fdata(y), fdata(rstd), fdata(xc), fdata(wc), N, D, (float)eps);
        empo_tensor *ins[2] = {x, weight};
        empo_node *node = empo_node_record("rmsnorm", rmsnorm_backward, y, 2, ins, &st);
        if (node) {
            empo_node_save(node, 0, xc);
            empo_node_save(node, 1, wc);
            empo_node_save(node, 2, rstd);
        }
    }
    empo_tensor_release(xc);
    empo_tensor_release(wc);
    empo_tensor_release(rstd);
    return empo_tensor_handover(out, y, st);
}

/* ---- swiglu ---- */

/* saved: 0 = gate, 1 = up (both contiguous) */
static int swiglu_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *gate = node->saved[0], *up = node->saved[1];
    int st = EMPO_OK;
    empo_tensor *dgate = grad_like(gate, node->inputs[0] != NULL, &st);
    empo_tensor *dup = grad_like(up, node->inputs[1] != NULL, &st);
    if (st != EMPO_OK) {
        empo_tensor_release(dgate);
        empo_tensor_release(dup);
        return st;
    }
    empo_kernels_of(g)->swiglu_backward(fdata(dgate), fdata(dup), fdata(g), fdata(gate), fdata(up),
                                    empo_tensor_numel(gate));
    gin[0] = dgate;
    gin[1] = dup;
    return EMPO_OK;
}

int empo_swiglu(empo_tensor **out, empo_tensor *gate, empo_tensor *up) {
    EMPO_TRY(empo_check_input("swiglu", "gate", gate, EMPO_DT_FLOAT, "gate", gate));
    EMPO_TRY(empo_check_input("swiglu", "up", up, EMPO_DT_FLOAT, "gate", gate));
    if (gate->ndim != up->ndim || memcmp(gate->shape, up->shape, sizeof(int64_t) * (size_t)gate->ndim))
        return empo_fail(EMPO_E_SHAPE, "swiglu: gate %s and up %s: shapes must be equal", empo_desc(gate),
                         empo_desc(up));
    empo_tensor *gc = NULL, *uc = NULL, *y = NULL;
    int st = empo_contiguous_nograd(&gc, gate);
    if (st == EMPO_OK) st = empo_contiguous_nograd(&uc, up);
    if (st == EMPO_OK && !(y = empo_tensor_new_like(gate, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        empo_kernels_of(gate)->swiglu_forward(fdata(y), fdata(gc), fdata(uc), empo_tensor_numel(gate));
        empo_tensor *ins[2] = {gate, up};
        empo_node *node = empo_node_record("swiglu", swiglu_backward, y, 2, ins, &st);
        if (node) {
            empo_node_save(node, 0, gc);
            empo_node_save(node, 1, uc);
        }
    }
    empo_tensor_release(gc);
    empo_tensor_release(uc);
    return empo_tensor_handover(out, y, st);
}
