/* op_elementwise.c — broadcasting binary ops, scalar and unary ops, and
 * their backward functions. Kernels live in kernels/{cpu,ref}/elementwise.c. */
#include <math.h>
#include "autograd/autograd_internal.h"
#include "kernels/parallel.h"
#include "op_dispatch.h"

typedef void (*binary_kernel)(int, float *, const float *, int64_t, const float *, int64_t, int64_t);

typedef struct {
    binary_kernel kernel;
    int op, nd;
    float *out;
    const float *a, *b;
    int64_t sa_flat, sb_flat, inner;     /* flat mode: element strides 0 or 1 */
    const int64_t *shape, *sa, *sb;      /* row mode: broadcast strides */
} binary_job;

static void binary_flat(void *ctx, int64_t lo, int64_t hi) {
    binary_job *j = ctx;
    j->kernel(j->op, j->out + lo, j->a + lo * j->sa_flat, j->sa_flat, j->b + lo * j->sb_flat, j->sb_flat, hi - lo);
}

static void binary_rows(void *ctx, int64_t lo, int64_t hi) {
    binary_job *j = ctx;
    int nd = j->nd;
    for (int64_t r = lo; r < hi; r++)
        j->kernel(j->op, j->out + r * j->inner, j->a + empo_linear_offset(r, nd - 1, j->shape, j->sa),
                  j->sa[nd - 1], j->b + empo_linear_offset(r, nd - 1, j->shape, j->sb), j->sb[nd - 1], j->inner);
}

/* t broadcast to y's shape as a contiguous tensor on t's device (a new
 * reference to t when it already is one); op_dispatch.h */
int empo_expand_on_device(empo_tensor **out, const empo_tensor *t, const empo_tensor *y) {
    if (empo_tensor_is_contiguous(t) && empo_tensor_numel(t) == empo_tensor_numel(y)) {
        empo_tensor_retain((empo_tensor *)t);
        *out = (empo_tensor *)t;
        return EMPO_OK;
    }
    empo_tensor *e = empo_tensor_new_like(y, t->dtype);
    if (!e) return EMPO_E_NOMEM;
    empo_strided_copy c = {.ndim = y->ndim, .esize = empo_dtype_size(t->dtype)};
    empo_broadcast_strides(t, y->ndim, y->shape, c.src_strides);
    for (int d = 0; d < y->ndim; d++) c.shape[d] = y->shape[d], c.dst_strides[d] = e->strides[d];
    empo_kernels_of(t)->copy_strided(empo_tensor_data(e), empo_tensor_data(t), &c);
    *out = e;
    return EMPO_OK;
}

/* On a device: broadcast operands are made whole first, then one sweep. */
static int run_binary_on_device(int op, empo_tensor *y, const empo_tensor *a, const empo_tensor *b) {
    empo_tensor *ea = NULL, *eb = NULL;
    int64_t n = empo_tensor_numel(y);
    int flat_a = empo_tensor_numel(a) == 1, flat_b = empo_tensor_numel(b) == 1;
    int st = flat_a ? EMPO_OK : empo_expand_on_device(&ea, a, y);
    if (st == EMPO_OK && !flat_b) st = empo_expand_on_device(&eb, b, y);
    if (st == EMPO_OK)
        empo_kernels_of(y)->binary(op, empo_tensor_data(y), empo_tensor_data(flat_a ? a : ea), !flat_a,
                                   empo_tensor_data(flat_b ? b : eb), !flat_b, n);
    empo_tensor_release(ea);
    empo_tensor_release(eb);
    return st;
}

/* y = a (op) b over the broadcast shape of y: one flat sweep when both
 * operands are whole contiguous tensors or scalars, else row by row. */
static void run_binary(int op, empo_tensor *y, const empo_tensor *a, const empo_tensor *b) {
    int nd = y->ndim;
    int64_t n = empo_tensor_numel(y), sa[EMPO_MAX_DIMS], sb[EMPO_MAX_DIMS];
    empo_broadcast_strides(a, nd, y->shape, sa);
    empo_broadcast_strides(b, nd, y->shape, sb);
    binary_job j = {.kernel = empo_kernels()->binary, .op = op, .nd = nd,
                    .out = empo_tensor_data(y), .a = empo_tensor_data(a), .b = empo_tensor_data(b),
                    .shape = y->shape, .sa = sa, .sb = sb};
    int flat_a = empo_tensor_is_contiguous(a) && empo_tensor_numel(a) == n;
    int flat_b = empo_tensor_is_contiguous(b) && empo_tensor_numel(b) == n;
    if ((flat_a || empo_tensor_numel(a) == 1) && (flat_b || empo_tensor_numel(b) == 1)) {
        j.sa_flat = flat_a;
        j.sb_flat = flat_b;
        empo_parallel_for(n, n, binary_flat, &j);
        return;
    }
    j.inner = nd ? y->shape[nd - 1] : 1;
    empo_parallel_for(j.inner ? n / j.inner : 0, n, binary_rows, &j);
}

/* Validates, broadcasts and computes y = a (op) b without autograd. */
static int binary_forward(empo_tensor **out, const char *name, int op, empo_tensor *a, empo_tensor *b) {
    EMPO_TRY(empo_check_input(name, "a", a, EMPO_DT_FLOAT, "a", a));
    EMPO_TRY(empo_check_input(name, "b", b, EMPO_DT_FLOAT, "a", a));
    int nd;
    int64_t shape[EMPO_MAX_DIMS];
    EMPO_TRY(empo_broadcast_shapes(name, a->ndim, a->shape, b->ndim, b->shape, &nd, shape));
    empo_tensor *y = empo_tensor_new_on(nd, shape, EMPO_F32, empo_tensor_device(a));
    if (!y) return EMPO_E_NOMEM;
    if (empo_on_device(y)) {
        int st = run_binary_on_device(op, y, a, b);
        if (st != EMPO_OK) return empo_tensor_handover(out, y, st);
    } else {
        run_binary(op, y, a, b);
    }
    *out = y;
    return EMPO_OK;
}

/* g (op) t without autograd, then summed down to shape of `like` */
static int grad_term(empo_tensor **gin, int op, empo_tensor *g, empo_tensor *t, const empo_tensor *like) {
    empo_tensor *prod = NULL;
    if (t) EMPO_TRY(binary_forward(&prod, "backward", op, g, t));
    else { prod = g; empo_tensor_retain(g); }
    int st = empo_reduce_to_shape(gin, prod, like->ndim, like->shape);
    empo_tensor_release(prod);
    return st;
}

static int add_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    if (node->inputs[0]) EMPO_TRY(grad_term(&gin[0], 0, g, NULL, node->inputs[0]));
    if (node->inputs[1]) EMPO_TRY(grad_term(&gin[1], 0, g, NULL, node->inputs[1]));
    return EMPO_OK;
}

static int sub_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    if (node->inputs[0]) EMPO_TRY(grad_term(&gin[0], 0, g, NULL, node->inputs[0]));
    if (node->inputs[1]) {
        empo_tensor *ng = NULL;
        EMPO_TRY(empo_neg(&ng, g));
        int st = grad_term(&gin[1], 0, ng, NULL, node->inputs[1]);
        empo_tensor_release(ng);
        return st;
    }
    return EMPO_OK;
}

/* saved: 0 = a, 1 = b */
static int mul_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    if (node->inputs[0]) EMPO_TRY(grad_term(&gin[0], EMPO_BIN_MUL, g, node->saved[1], node->inputs[0]));
    if (node->inputs[1]) EMPO_TRY(grad_term(&gin[1], EMPO_BIN_MUL, g, node->saved[0], node->inputs[1]));
    return EMPO_OK;
}

/* saved: 0 = a, 1 = b, 2 = y = a / b;  d/db = -y / b */
static int div_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    if (node->inputs[0]) EMPO_TRY(grad_term(&gin[0], EMPO_BIN_DIV, g, node->saved[1], node->inputs[0]));
    if (node->inputs[1]) {
        empo_tensor *t = NULL, *nt = NULL;
        EMPO_TRY(binary_forward(&t, "backward", EMPO_BIN_DIV, node->saved[2], node->saved[1]));
        int st = empo_neg(&nt, t);
        empo_tensor_release(t);
        if (st == EMPO_OK) st = grad_term(&gin[1], EMPO_BIN_MUL, g, nt, node->inputs[1]);
        empo_tensor_release(nt);
        return st;
    }
    return EMPO_OK;
}

/* saved: 0 = a, 1 = b, 2 = y = a^b;  d/da = b y / a, d/db = y log a */
static int pow_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *a = node->saved[0], *b = node->saved[1], *y = node->saved[2];
    int st = EMPO_OK;
    if (node->inputs[0]) {
        /* b * a^(b-1), computed as b * pow(a, b - 1) so a = 0 works */
        empo_tensor *bm1 = NULL, *p = NULL, *d = NULL;
        st = empo_add_scalar(&bm1, b, -1.0);
        if (st == EMPO_OK) st = binary_forward(&p, "backward", EMPO_BIN_POW, a, bm1);
        if (st == EMPO_OK) st = binary_forward(&d, "backward", EMPO_BIN_MUL, p, b);
        if (st == EMPO_OK) st = grad_term(&gin[0], EMPO_BIN_MUL, g, d, node->inputs[0]);
        empo_tensor_release(bm1); empo_tensor_release(p); empo_tensor_release(d);
    }
    if (st == EMPO_OK && node->inputs[1]) {
        empo_tensor *la = NULL, *d = NULL;
        st = empo_log(&la, a);
        if (st == EMPO_OK) st = binary_forward(&d, "backward", EMPO_BIN_MUL, y, la);
        if (st == EMPO_OK) st = grad_term(&gin[1], EMPO_BIN_MUL, g, d, node->inputs[1]);
        empo_tensor_release(la); empo_tensor_release(d);
    }
    return st;
}

/* saved: 0 = a, 1 = b. The winner takes the gradient; ties split it. */
static int minmax_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    int is_max = node->i[0] == EMPO_BIN_MAX;
    for (int k = 0; k < 2; k++) {
        if (!node->inputs[k]) continue;
        empo_tensor *self = node->saved[k], *other = node->saved[1 - k];
        empo_tensor *win = NULL, *tie = NULL, *w = NULL, *half = NULL;
        int st = binary_forward(&win, "backward", is_max ? EMPO_BIN_GT : EMPO_BIN_LT, self, other);
        if (st == EMPO_OK) st = binary_forward(&tie, "backward", EMPO_BIN_EQ, self, other);
        if (st == EMPO_OK) st = empo_mul_scalar(&half, tie, 0.5);
        if (st == EMPO_OK) st = binary_forward(&w, "backward", EMPO_BIN_ADD, win, half);
        if (st == EMPO_OK) st = grad_term(&gin[k], EMPO_BIN_MUL, g, w, node->inputs[k]);
        empo_tensor_release(win); empo_tensor_release(tie); empo_tensor_release(w); empo_tensor_release(half);
        EMPO_TRY(st);
    }
    return EMPO_OK;
}

static int binary_op(empo_tensor **out, const char *name, int op, empo_tensor *a, empo_tensor *b,
                     empo_backward_fn backward, int save_out) {
    empo_tensor *y = NULL;
    EMPO_TRY(binary_forward(&y, name, op, a, b));
    empo_tensor *ins[2] = {a, b};
    int st;
    empo_node *node = empo_node_record(name, backward, y, 2, ins, &st);
    if (node) {
        node->i[0] = op;
        empo_node_save(node, 0, a);
        empo_node_save(node, 1, b);
        if (save_out) st = empo_node_save_output(node, 2, y);
    }
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

int empo_add(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return binary_op(out, "add", EMPO_BIN_ADD, a, b, add_backward, 0); }
int empo_sub(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return binary_op(out, "sub", EMPO_BIN_SUB, a, b, sub_backward, 0); }
int empo_mul(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return binary_op(out, "mul", EMPO_BIN_MUL, a, b, mul_backward, 0); }
int empo_div(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return binary_op(out, "div", EMPO_BIN_DIV, a, b, div_backward, 1); }
int empo_pow(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return binary_op(out, "pow", EMPO_BIN_POW, a, b, pow_backward, 1); }
int empo_maximum(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return binary_op(out, "maximum", EMPO_BIN_MAX, a, b, minmax_backward, 0); }
int empo_minimum(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return binary_op(out, "minimum", EMPO_BIN_MIN, a, b, minmax_backward, 0); }

/* Comparisons accept any dtype (compared as f32) and give u8 masks. */
static int compare(empo_tensor **out, const char *name, int op, empo_tensor *a, empo_tensor *b) {
    if (!a || !b) return empo_fail(EMPO_E_ARG, "%s: NULL tensor", name);
    empo_tensor *fa = NULL, *fb = NULL, *y = NULL;
    int st = empo_copy_as(&fa, a, EMPO_F32);
    if (st == EMPO_OK) st = empo_copy_as(&fb, b, EMPO_F32);
    if (st == EMPO_OK) st = binary_forward(&y, name, op, fa, fb);
    if (st == EMPO_OK) st = empo_copy_as(out, y, EMPO_U8);
    empo_tensor_release(fa); empo_tensor_release(fb); empo_tensor_release(y);
    return st;
}

int empo_eq(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return compare(out, "eq", EMPO_BIN_EQ, a, b); }
int empo_lt(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return compare(out, "lt", EMPO_BIN_LT, a, b); }
int empo_gt(empo_tensor **out, empo_tensor *a, empo_tensor *b) { return compare(out, "gt", EMPO_BIN_GT, a, b); }

/* ---- unary and scalar ops ---- */
typedef struct {
    void (*forward)(int, float *, const float *, int64_t, float, float);
    void (*backward)(int, float *, const float *, const float *, const float *, int64_t, float, float);
    int op;
    float *out;
    const float *g, *x, *y;
    float p0, p1;
} unary_job;

static void unary_range(void *ctx, int64_t lo, int64_t hi) {
    unary_job *j = ctx;
    j->forward(j->op, j->out + lo, j->x + lo, hi - lo, j->p0, j->p1);
}

static void unary_backward_range(void *ctx, int64_t lo, int64_t hi) {
    unary_job *j = ctx;
    j->backward(j->op, j->out + lo, j->g + lo, j->x + lo, j->y + lo, hi - lo, j->p0, j->p1);
}

/* saved: 0 = x (contiguous), 1 = y; f[0], f[1] = parameters; i[0] = op */
static int unary_backward(empo_node *node, empo_tensor *g, empo_tensor **gin) {
    empo_tensor *x = node->saved[0], *y = node->saved[1];
    empo_tensor *gx = empo_tensor_new_like(x, EMPO_F32);
    if (!gx) return EMPO_E_NOMEM;
    unary_job j = {.backward = empo_kernels_of(x)->unary_backward,
                   .op = (int)node->i[0], .out = empo_tensor_data(gx), .g = empo_tensor_data(g),
                   .x = empo_tensor_data(x), .y = empo_tensor_data(y), .p0 = (float)node->f[0],
                   .p1 = (float)node->f[1]};
    int64_t n = empo_tensor_numel(x);
    if (empo_on_device(x)) unary_backward_range(&j, 0, n);   /* one launch */
    else empo_parallel_for(n, n * 8, unary_backward_range, &j);
    gin[0] = gx;
    return EMPO_OK;
}

static int unary_op(empo_tensor **out, const char *name, int op, empo_tensor *x, double p0, double p1) {
    EMPO_TRY(empo_check_input(name, "input", x, EMPO_DT_FLOAT, "input", x));
    empo_tensor *xc = NULL;
    EMPO_TRY(empo_contiguous_nograd(&xc, x));
    empo_tensor *y = empo_tensor_new_like(x, EMPO_F32);
    if (!y) { empo_tensor_release(xc); return EMPO_E_NOMEM; }
    unary_job j = {.forward = empo_kernels_of(x)->unary, .op = op,
                   .out = empo_tensor_data(y), .x = empo_tensor_data(xc), .p0 = (float)p0, .p1 = (float)p1};
    int64_t n = empo_tensor_numel(x);
    /* transcendental ops cost ~8 simple ops per element */
    if (empo_on_device(x)) unary_range(&j, 0, n);   /* one launch */
    else empo_parallel_for(n, n * 8, unary_range, &j);
    int st;
    empo_node *node = empo_node_record(name, unary_backward, y, 1, &x, &st);
    if (node) {
        node->i[0] = op;
        node->f[0] = p0;
        node->f[1] = p1;
        empo_node_save(node, 0, xc);
        st = empo_node_save_output(node, 1, y);
    }
    empo_tensor_release(xc);
    if (st != EMPO_OK) { empo_tensor_release(y); return st; }
    *out = y;
    return EMPO_OK;
}

int empo_neg(empo_tensor **out, empo_tensor *a) { return unary_op(out, "neg", EMPO_UN_NEG, a, 0, 0); }
int empo_exp(empo_tensor **out, empo_tensor *a) { return unary_op(out, "exp", EMPO_UN_EXP, a, 0, 0); }
int empo_log(empo_tensor **out, empo_tensor *a) { return unary_op(out, "log", EMPO_UN_LOG, a, 0, 0); }
int empo_sqrt(empo_tensor **out, empo_tensor *a) { return unary_op(out, "sqrt", EMPO_UN_SQRT, a, 0, 0); }
int empo_rsqrt(empo_tensor **out, empo_tensor *a) { return unary_op(out, "rsqrt", EMPO_UN_RSQRT, a, 0, 0); }
int empo_tanh(empo_tensor **out, empo_tensor *a) { return unary_op(out, "tanh", EMPO_UN_TANH, a, 0, 0); }
int empo_sigmoid(empo_tensor **out, empo_tensor *a) { return unary_op(out, "sigmoid", EMPO_UN_SIGMOID, a, 0, 0); }
int empo_silu(empo_tensor **out, empo_tensor *a) { return unary_op(out, "silu", EMPO_UN_SILU, a, 0, 0); }
int empo_relu(empo_tensor **out, empo_tensor *a) { return unary_op(out, "relu", EMPO_UN_RELU, a, 0, 0); }
int empo_abs(empo_tensor **out, empo_tensor *a) { return unary_op(out, "abs", EMPO_UN_ABS, a, 0, 0); }

int empo_gelu(empo_tensor **out, empo_tensor *a, int approximate) {
    return unary_op(out, "gelu", approximate ? EMPO_UN_GELU_TANH : EMPO_UN_GELU, a, 0, 0);
}

int empo_add_scalar(empo_tensor **out, empo_tensor *a, double s) { return unary_op(out, "add_scalar", EMPO_UN_ADD_S, a, s, 0); }
int empo_mul_scalar(empo_tensor **out, empo_tensor *a, double s) { return unary_op(out, "mul_scalar", EMPO_UN_MUL_S, a, s, 0); }
int empo_pow_scalar(empo_tensor **out, empo_tensor *a, double s) { return unary_op(out, "pow_scalar", EMPO_UN_POW_S, a, s, 0); }
int empo_rsub_scalar(empo_tensor **out, empo_tensor *a, double s) { return unary_op(out, "rsub_scalar", EMPO_UN_RSUB_S, a, s, 0); }
int empo_rdiv_scalar(empo_tensor **out, empo_tensor *a, double s) { return unary_op(out, "rdiv_scalar", EMPO_UN_RDIV_S, a, s, 0); }

int empo_clamp(empo_tensor **out, empo_tensor *a, double lo, double hi) {
    if (!(lo <= hi)) return empo_fail(EMPO_E_ARG, "clamp: lower bound %g is above upper bound %g", lo, hi);
    return unary_op(out, "clamp", EMPO_UN_CLAMP, a, lo, hi);
}
