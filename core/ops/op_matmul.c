/* op_matmul.c — matmul (batched, broadcasting, transposed views without
 * copies), linear (x @ w^T + b, the layer every transformer projection
 * uses) and its mixed-precision twin linear_bf16 (bf16 products, f32
 * master weights), on the GEMM kernels, with backward. */
#include <string.h>
#include "autograd/autograd_internal.h"
#include "op_dispatch.h"

/* the GEMM of the device t lives on */
static empo_gemm_fn *gemm(const empo_tensor *t) { return empo_kernels_of(t)->gemm; }

/* How GEMM can read the last two dims (r, c) of t: row-major (trans 0) or
 * column-major (trans 1) with leading dimension ld. 0 if neither. */
static int mat_layout(const empo_tensor *t, int *trans, int64_t *ld) {
    int nd = t->ndim;
    int64_t r = t->shape[nd - 2], c = t->shape[nd - 1], sr = t->strides[nd - 2], sc = t->strides[nd - 1];
    int64_t c1 = c > 1 ? c : 1, r1 = r > 1 ? r : 1;
    if ((sc == 1 || c <= 1) && (r <= 1 || sr >= c1)) { *trans = 0; *ld = r <= 1 ? c1 : sr; return 1; }
    if ((sr == 1 || r <= 1) && (c <= 1 || sc >= r1)) { *trans = 1; *ld = c <= 1 ? r1 : sc; return 1; }
    return 0;
}

/* A GEMM-readable version of t (new reference; copies only when needed). */
static int gemm_ready(empo_tensor **out, empo_tensor *t, int *trans, int64_t *ld) {
    if (t->dtype == EMPO_F32 && mat_layout(t, trans, ld)) { empo_tensor_retain(t); *out = t; return EMPO_OK; }
    EMPO_TRY(empo_copy_as(out, t, EMPO_F32));
    mat_layout(*out, trans, ld);
    return EMPO_OK;
}

/* t seen with at least 2 dims: a 1-d a becomes [1, K], a 1-d b [K, 1]. */
static empo_tensor *promote(empo_tensor *t, int is_b) {
    if (t->ndim >= 2) { empo_tensor_retain(t); return t; }
    int64_t shape[2] = {is_b ? t->shape[0] : 1, is_b ? 1 : t->shape[0]};
    int64_t strides[2] = {is_b ? t->strides[0] : 0, is_b ? 0 : t->strides[0]};
    return empo_tensor_view_of(t, 2, shape, strides, t->offset);
}

/* y [batch, M, N] = a2 [.., M, K] @ b2 [.., K, N] with broadcast batch dims */
static int matmul_2d(empo_tensor **out, empo_tensor *a2, empo_tensor *b2) {
    char ba[192], bb[192];
    int na = a2->ndim, nb = b2->ndim;
    int64_t M = a2->shape[na - 2], K = a2->shape[na - 1], N = b2->shape[nb - 1];
    if (b2->shape[nb - 2] != K)
        return empo_fail(EMPO_E_SHAPE, "matmul: %s @ %s: inner sizes differ (%lld vs %lld)",
                         empo_shape_str(na, a2->shape, ba, sizeof ba), empo_shape_str(nb, b2->shape, bb, sizeof bb),
                         (long long)K, (long long)b2->shape[nb - 2]);
    int nbat;
    int64_t shape[EMPO_MAX_DIMS];
    EMPO_TRY(empo_broadcast_shapes("matmul (batch dims)", na - 2, a2->shape, nb - 2, b2->shape, &nbat, shape));
    shape[nbat] = M;
    shape[nbat + 1] = N;
    empo_tensor *y = empo_tensor_new_on(nbat + 2, shape, EMPO_F32, empo_tensor_device(a2)), *a = NULL, *b = NULL;
    if (!y) return EMPO_E_NOMEM;
    int ta, tb, st;
    int64_t lda, ldb;
    st = gemm_ready(&a, a2, &ta, &lda);
    if (st == EMPO_OK) st = gemm_ready(&b, b2, &tb, &ldb);
    if (st != EMPO_OK) { empo_tensor_release(a); empo_tensor_release(y); return st; }
    int64_t batch = empo_shape_numel(nbat, shape), sa[EMPO_MAX_DIMS], sbs[EMPO_MAX_DIMS];
    empo_tensor ta_view = *a, tb_view = *b;   /* batch-only geometry for broadcast strides */
    ta_view.ndim = na - 2;
    tb_view.ndim = nb - 2;
    empo_broadcast_strides(&ta_view, nbat, shape, sa);
    empo_broadcast_strides(&tb_view, nbat, shape, sbs);
    const float *pa = empo_tensor_data(a), *pb = empo_tensor_data(b);
    float *py = empo_tensor_data(y);
    /* b shared by every batch and a's rows evenly spaced: one tall GEMM */
    int b_shared = 1, a_rows = !ta;
    int64_t expect = M * lda;
    for (int d = nbat - 1; d >= 0; d--) {
        if (sbs[d] != 0 && shape[d] != 1) b_shared = 0;
        if (shape[d] != 1 && sa[d] != expect) a_rows = 0;
        expect *= shape[d];
    }
    if (b_shared && a_rows) {
        gemm(y)(0, tb, batch * M, N, K, 1.0f, pa, lda, pb, ldb, 0.0f, py, N);
    } else {
        for (int64_t i = 0; i < batch; i++)
            gemm(y)(ta, tb, M, N, K, 1.0f, pa + empo_linear_offset(i, nbat, shape, sa), lda,
                   pb + empo_linear_offset(i, nbat, shape, sbs), ldb, 0.0f, py + i * M * N, N);
    }
    empo_tensor_release(a);
    empo_tensor_release(b);
    *out = y;
    return EMPO_OK;
}

/* saved: 0 = a2, 1 = b2 (promoted); grads are reduced to their shapes and
 * reshaped to the inputs' shapes. */
static int matmul_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *a2 = node->saved[0], *b2 = node->saved[1];
    /* g with the dims dropped for 1-d operands put back: batch + [M, N] */
    int64_t gshape[EMPO_MAX_DIMS];
    int nbat = g->ndim - 2 + (int)node->i[0] + (int)node->i[1];
    for (int d = 0; d < nbat; d++) gshape[d] = g->shape[d];
    gshape[nbat] = a2->shape[a2->ndim - 2];
    gshape[nbat + 1] = b2->shape[b2->ndim - 1];
    int gnd = nbat + 2;
    empo_tensor *g2 = NULL, *t = NULL, *r = NULL;
    EMPO_TRY(empo_reshape(&g2, g, gnd, gshape));
    int st = EMPO_OK;
    for (int k = 0; k < 2 && st == EMPO_OK; k++) {
        empo_tensor *x = node->inputs[k];
        if (!x) continue;
        empo_tensor *other = k ? a2 : b2, *ot = NULL;
        st = empo_transpose(&ot, other, -1, -2);
        if (st == EMPO_OK) st = k ? matmul_2d(&t, ot, g2) : matmul_2d(&t, g2, ot);
        empo_tensor *mine = k ? b2 : a2;
        if (st == EMPO_OK) st = empo_reduce_to_shape(&r, t, mine->ndim, mine->shape);
        if (st == EMPO_OK) st = empo_reshape(&gin[k], r, x->ndim, x->shape);
        empo_tensor_release(ot); empo_tensor_release(t); empo_tensor_release(r);
        t = r = NULL;
    }
    empo_tensor_release(g2);
    return st;
}

int empo_matmul(empo_tensor **out, empo_tensor *a, empo_tensor *b) {
    EMPO_TRY(empo_check_input("matmul", "a", a, EMPO_DT_FLOAT, "a", a));
    EMPO_TRY(empo_check_input("matmul", "b", b, EMPO_DT_FLOAT, "a", a));
    if (a->ndim == 0 || b->ndim == 0)
        return empo_fail(EMPO_E_SHAPE, "matmul: %s @ %s: both operands need at least 1 dim", empo_desc(a), empo_desc(b));
    empo_tensor *a2 = promote(a, 0), *b2 = promote(b, 1), *y = NULL;
    int st = a2 && b2 ? matmul_2d(&y, a2, b2) : EMPO_E_NOMEM;
    if (st == EMPO_OK && (a->ndim == 1 || b->ndim == 1)) {   /* drop the promoted dims */
        int64_t shape[EMPO_MAX_DIMS];
        int nd = 0;
        for (int d = 0; d < y->ndim; d++) {
            if (a->ndim == 1 && d == y->ndim - 2) continue;
            if (b->ndim == 1 && d == y->ndim - 1) continue;
            shape[nd++] = y->shape[d];
        }
        y->ndim = nd;
        memcpy(y->shape, shape, sizeof shape);
        empo_contiguous_strides(nd, y->shape, y->strides);
    }
    empo_tensor *ins[2] = {a, b};
    empo_node *node = st == EMPO_OK ? empo_node_record("matmul", matmul_backward, y, 2, ins, &st) : NULL;
    if (node) {
        node->i[0] = a->ndim == 1;
        node->i[1] = b->ndim == 1;
        empo_node_save(node, 0, a2);
        empo_node_save(node, 1, b2);
    }
    empo_tensor_release(a2);
    empo_tensor_release(b2);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

/* ---- linear: y [R, out] = x [R, in] @ w[out, in]^T + bias ---- */

/* gb [out] = the column sums of g [R, out] */
static int bias_grad(empo_tensor **gb, empo_tensor *g, int64_t R, int64_t outf) {
    const float *pg = empo_tensor_data(g);
    if (empo_on_device(g)) {
        if (!(*gb = empo_tensor_new_on(1, &outf, EMPO_F32, empo_tensor_device(g)))) return EMPO_E_NOMEM;
        empo_kernels_of(g)->sum_dim(empo_tensor_data(*gb), pg, 1, R, outf);
        return EMPO_OK;
    }
    *gb = NULL;
    EMPO_TRY(empo_tensor_zeros(gb, 1, &outf, EMPO_F32));
    float *b = empo_tensor_data(*gb);
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < outf; j++) b[j] += pg[r * outf + j];
    return EMPO_OK;
}

/* y [R, out] starts as the bias rows (GEMM then adds onto them, beta = 1) */
static int bias_rows(float *py, empo_tensor *bias, const empo_tensor *y, int64_t R, int64_t outf) {
    empo_tensor *bc = NULL;
    EMPO_TRY(empo_contiguous_nograd(&bc, bias));
    const float *pb = empo_tensor_data(bc);
    if (empo_on_device(y)) {   /* the bias row repeated: a copy with row stride 0 */
        empo_strided_copy c = {.ndim = 2, .esize = 4, .shape = {R, outf}, .dst_strides = {outf, 1},
                               .src_strides = {0, 1}};
        empo_kernels_of(y)->copy_strided(py, pb, &c);
    } else {
        for (int64_t r = 0; r < R; r++) memcpy(py + r * outf, pb, sizeof(float) * (size_t)outf);
    }
    empo_tensor_release(bc);
    return EMPO_OK;
}

/* the checks linear and linear_bf16 share: x [..., in], w [out, in], bias [out] */
static int check_linear(const char *op, empo_tensor *x, empo_tensor *w, empo_tensor *bias, unsigned w_dtypes) {
    EMPO_TRY(empo_check_input(op, "x", x, EMPO_DT_FLOAT, "x", x));
    EMPO_TRY(empo_check_input(op, "weight", w, w_dtypes, "x", x));
    if (bias) EMPO_TRY(empo_check_input(op, "bias", bias, EMPO_DT_FLOAT, "x", x));
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return empo_fail(EMPO_E_SHAPE, "%s: x %s and weight %s: expected x [..., in] and weight [out, in]", op,
                         empo_desc(x), empo_desc(w));
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
        return empo_fail(EMPO_E_SHAPE, "%s: bias %s does not match weight %s (expected [%lld])", op, empo_desc(bias),
                         empo_desc(w), (long long)w->shape[0]);
    return EMPO_OK;
}
/* saved: 0 = x rows (contiguous), 1 = w (f32 as the product read it, or a
 * frozen bf16 weight as given: widened again here, so a graph over a bf16
 * model holds its matrices at 2 bytes, not a widened copy of each) */
static int linear_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *x = node->saved[0], *w = node->saved[1];
    int64_t in = w->shape[1], outf = w->shape[0], R = empo_tensor_numel(x) / (in ? in : 1);
    const float *pg = empo_tensor_data(g), *px = empo_tensor_data(x);
    if (node->inputs[0]) {   /* gx [R, in] = g [R, out] @ w [out, in] */
        empo_tensor *wr = NULL;
        int tw;
        int64_t ldw;
        EMPO_TRY(gemm_ready(&wr, w, &tw, &ldw));
        gin[0] = empo_tensor_new_on(node->inputs[0]->ndim, node->inputs[0]->shape, EMPO_F32, empo_tensor_device(g));
        if (gin[0])
            gemm(g)(0, tw, R, in, outf, 1.0f, pg, outf, empo_tensor_data(wr), ldw, 0.0f, empo_tensor_data(gin[0]), in);
        empo_tensor_release(wr);
        if (!gin[0]) return EMPO_E_NOMEM;
    }
    if (node->inputs[1]) {   /* gw [out, in] = g^T [out, R] @ x [R, in] */
        gin[1] = empo_tensor_new_like(w, EMPO_F32);
        if (!gin[1]) return EMPO_E_NOMEM;
        gemm(g)(1, 0, outf, in, R, 1.0f, pg, outf, px, in, 0.0f, empo_tensor_data(gin[1]), in);
    }
    return node->inputs[2] ? bias_grad(&gin[2], g, R, outf) : EMPO_OK;
}

int empo_linear(empo_tensor **out, empo_tensor *x, empo_tensor *w, empo_tensor *bias) {
    /* a bf16 weight (a frozen base's: empo.nn.lora) is widened for the product */
    EMPO_TRY(check_linear("linear", x, w, bias, EMPO_DT_FLOAT | EMPO_DT(EMPO_BF16)));
    int64_t in = w->shape[1], outf = w->shape[0], R = empo_tensor_numel(x) / (in ? in : 1);
    int64_t shape[EMPO_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = outf;
    empo_tensor *xc = NULL, *wr = NULL, *y = NULL;
    int tw, st;
    int64_t ldw;
    EMPO_TRY(empo_contiguous_nograd(&xc, x));
    st = gemm_ready(&wr, w, &tw, &ldw);
    if (st == EMPO_OK && !(y = empo_tensor_new_on(x->ndim, shape, EMPO_F32, empo_tensor_device(x)))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK) {
        float *py = empo_tensor_data(y);
        if (bias) st = bias_rows(py, bias, y, R, outf);
        /* op(B) must be w^T: a row-major w is read transposed */
        if (st == EMPO_OK)
            gemm(y)(0, !tw, R, outf, in, 1.0f, empo_tensor_data(xc), in, empo_tensor_data(wr), ldw, bias ? 1.0f : 0.0f,
                   py, outf);
    }
    empo_tensor *ins[3] = {x, w, bias};
    empo_node *node = st == EMPO_OK ? empo_node_record("linear", linear_backward, y, 3, ins, &st) : NULL;
    if (node) {
        empo_node_save(node, 0, xc);
        empo_node_save(node, 1, w->dtype == EMPO_BF16 ? w : wr);
    }
    empo_tensor_release(xc);
    empo_tensor_release(wr);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

/* ---- linear_bf16: mixed precision, y = bf16(x) @ w16^T + bias ----
 * saved: 0 = x in bf16 [R, in], 1 = w16. Backward, both products on bf16
 * operands summing in f32: gx = bf16(g) @ w16, gw = bf16(g)^T @ bf16(x)
 * (into w, the f32 master), gb = the column sums of g. */
static int linear_bf16_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *x16 = node->saved[0], *w16 = node->saved[1], *g16 = NULL;
    const int64_t in = w16->shape[1], outf = w16->shape[0], R = empo_tensor_numel(x16) / (in ? in : 1);
    empo_gemm_bf16_fn *mm = empo_kernels_of(g)->gemm_bf16;
    if (node->inputs[0] || node->inputs[1]) EMPO_TRY(empo_copy_as(&g16, g, EMPO_BF16));
    int st = EMPO_OK;
    if (node->inputs[0]) {   /* gx [R, in] = g [R, out] @ w16 [out, in] */
        gin[0] = empo_tensor_new_on(node->inputs[0]->ndim, node->inputs[0]->shape, EMPO_F32, empo_tensor_device(g));
        if (gin[0]) mm(0, 0, R, in, outf, 1.0f, empo_tensor_data(g16), outf, empo_tensor_data(w16), in, 0.0f,
                       empo_tensor_data(gin[0]), in);
        else st = EMPO_E_NOMEM;
    }
    if (st == EMPO_OK && node->inputs[1]) {   /* gw [out, in] = g^T [out, R] @ x [R, in] */
        gin[1] = empo_tensor_new_like(w16, EMPO_F32);
        if (gin[1]) mm(1, 0, outf, in, R, 1.0f, empo_tensor_data(g16), outf, empo_tensor_data(x16), in, 0.0f,
                       empo_tensor_data(gin[1]), in);
        else st = EMPO_E_NOMEM;
    }
    empo_tensor_release(g16);
    if (st == EMPO_OK && node->inputs[2]) st = bias_grad(&gin[2], g, R, outf);
    return st;
}

int empo_linear_bf16(empo_tensor **out, empo_tensor *x, empo_tensor *w, empo_tensor *w16, empo_tensor *bias) {
    EMPO_TRY(check_linear("linear_bf16", x, w, bias, EMPO_DT_FLOAT));
    EMPO_TRY(empo_check_input("linear_bf16", "weight_bf16", w16, EMPO_DT(EMPO_BF16), "x", x));
    if (w16->ndim != 2 || w16->shape[0] != w->shape[0] || w16->shape[1] != w->shape[1] ||
        !empo_tensor_is_contiguous(w16))
        return empo_fail(EMPO_E_SHAPE, "linear_bf16: weight_bf16 %s must be a contiguous copy of weight %s",
                         empo_desc(w16), empo_desc(w));
    const int64_t in = w->shape[1], outf = w->shape[0], R = empo_tensor_numel(x) / (in ? in : 1);
    int64_t shape[EMPO_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = outf;
    empo_tensor *x16 = NULL, *y = NULL;
    int st = empo_copy_as(&x16, x, EMPO_BF16);
    if (st == EMPO_OK && !(y = empo_tensor_new_on(x->ndim, shape, EMPO_F32, empo_tensor_device(x)))) st = EMPO_E_NOMEM;
    if (st == EMPO_OK && bias) st = bias_rows(empo_tensor_data(y), bias, y, R, outf);
    if (st == EMPO_OK)
        empo_kernels_of(y)->gemm_bf16(0, 1, R, outf, in, 1.0f, empo_tensor_data(x16), in, empo_tensor_data(w16), in,
                                      bias ? 1.0f : 0.0f, empo_tensor_data(y), outf);
    empo_tensor *ins[3] = {x, w, bias};
    empo_node *node = st == EMPO_OK ? empo_node_record("linear_bf16", linear_bf16_backward, y, 3, ins, &st) : NULL;
    if (node) {
        empo_node_save(node, 0, x16);
        empo_node_save(node, 1, w16);
    }
    empo_tensor_release(x16);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}
