/* op_fused_rope.c — the rotary-embedding op (f32, half-rotation layout as
 * Hugging Face Qwen2/Llama): validation, positions resolved to one i64
 * [B, T] table, dispatch to kernels/cpu or kernels/ref (fused.h), and its
 * autograd node. Positions never get gradients. */
#include <math.h>
#include "op_fused.h"

/* saved: 0 = positions i64 [B, T]; out_shape = x's shape; f[0] = theta */
static int rope_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    const int64_t *s = node->out_shape;
    empo_tensor *dx = empo_tensor_new_on(4, s, EMPO_F32, empo_tensor_device(g));
    if (!dx) return EMPO_E_NOMEM;
    empo_kernels_of(g)->rope_backward(fdata(dx), fdata(g), (const int64_t *)empo_tensor_data(node->saved[0]), s[0], s[1],
                                  s[2], s[3], node->f[0]);
    gin[0] = dx;
    return EMPO_OK;
}

static int rope_check(empo_tensor *x, empo_tensor *positions, double theta) {
    EMPO_TRY(empo_check_input("rope", "x", x, EMPO_DT_FLOAT, "x", x));
    if (x->ndim != 4)
        return empo_fail(EMPO_E_SHAPE, "rope: x %s: expected 4 dims [B, H, T, Dh]", empo_desc(x));
    if (x->shape[3] % 2 != 0)
        return empo_fail(EMPO_E_SHAPE, "rope: x %s: head dim %lld must be even (half-rotation layout)",
                         empo_desc(x), (long long)x->shape[3]);
    if (!(theta > 0.0) || !isfinite(theta))
        return empo_fail(EMPO_E_ARG, "rope: theta %g must be finite and > 0", theta);
    if (!positions) return EMPO_OK;
    EMPO_TRY(empo_check_input("rope", "positions", positions, EMPO_DT_INDEX, "x", x));
    const int64_t B = x->shape[0], T = x->shape[2];
    int ok = (positions->ndim == 2 && positions->shape[0] == B && positions->shape[1] == T) ||
             (positions->ndim == 1 && positions->shape[0] == T);
    if (!ok)
        return empo_fail(EMPO_E_SHAPE, "rope: x %s and positions %s: positions must be [%lld x %lld] or [%lld]",
                         empo_desc(x), empo_desc(positions), (long long)B, (long long)T, (long long)T);
    return EMPO_OK;
}

/* The position of every (b, t) as one i64 [B, T] table on x's device:
 * positions[b, t], positions[t] for every row, or offset + t. */
static int rope_positions(empo_tensor **out, const empo_tensor *x, empo_tensor *positions, int64_t offset,
                          int64_t B, int64_t T) {
    const int64_t shape[2] = {B, T};
    empo_tensor *host = NULL, *pos = empo_tensor_new(2, shape, EMPO_I64);
    if (!pos) return EMPO_E_NOMEM;
    int st = index_on_host(&host, positions);
    int64_t *p = empo_tensor_data(pos);
    for (int64_t b = 0; st == EMPO_OK && b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            int64_t flat = host && host->ndim == 2 ? b * T + t : t;
            p[b * T + t] = host ? empo_index_at(host, flat) : offset + t;
        }
    empo_tensor_release(host);
    if (st == EMPO_OK) st = to_device_of(&pos, x);
    return empo_tensor_handover(out, pos, st);
}

int empo_rope(empo_tensor **out, empo_tensor *x, empo_tensor *positions, int64_t offset,
              double theta) {
    EMPO_TRY(rope_check(x, positions, theta));
    const int64_t B = x->shape[0], H = x->shape[1], T = x->shape[2], Dh = x->shape[3];
    empo_tensor *xc = NULL, *y = NULL, *pos = NULL;
    int st = empo_contiguous_nograd(&xc, x);
    if (st == EMPO_OK) st = rope_positions(&pos, x, positions, offset, B, T);
    if (st == EMPO_OK && !(y = empo_tensor_new_like(x, EMPO_F32))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        empo_kernels_of(x)->rope_forward(fdata(y), fdata(xc), (const int64_t *)empo_tensor_data(pos), B, H, T, Dh,
                                     theta);
        empo_node *node = empo_node_record("rope", rope_backward, y, 1, &x, &st);
        if (node) {
            empo_node_save(node, 0, pos);
            node->f[0] = theta;
        }
    }
    empo_tensor_release(xc);
    empo_tensor_release(pos);
    return empo_tensor_handover(out, y, st);
}
